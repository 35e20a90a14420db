"""Limits and budgets through the whole app: 429s, downgrades, and what is charged."""

from __future__ import annotations

from pathlib import Path

import httpx

from gateway.limits import MemoryStore
from tests.security.conftest import (
    LIMITED_KEY,
    OTHER_KEY,
    FakeClock,
    GatewayFactory,
    bearer,
    chat,
    keys_yaml,
)

# The mock upstream reports 10 prompt + 5 completion tokens; on big-a (10 / 30 USD per Mtok)
# that costs 0.00025 USD, on small-a (1 / 2 USD per Mtok) 0.00002 USD.
FRONTIER_COST_NANO = 250_000


def write_keys(tmp_path: Path, limits: str) -> Path:
    path = tmp_path / "keys.yaml"
    path.write_text(keys_yaml(limits))
    return path


def assert_429(r: httpx.Response, code: str) -> None:
    assert r.status_code == 429, r.text
    error = r.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == code
    assert int(r.headers["retry-after"]) >= 1


async def test_budget_downgrade_routes_to_the_cheaper_route(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    keys = write_keys(
        tmp_path, "{budget: {usd: 0.0001, per: day, action: downgrade, downgrade_route: small}}"
    )
    async with gateway_factory(keys_file=keys) as gw:
        first = await gw.client.post(
            "/v1/chat/completions", json=chat("prove it"), headers=bearer(LIMITED_KEY)
        )
        assert first.status_code == 200 and first.headers["x-gateway-route"] == "frontier"
        for _ in range(2):  # the first answer spent 0.00025 USD: over the budget from now on
            r = await gw.client.post(
                "/v1/chat/completions", json=chat("prove it"), headers=bearer(LIMITED_KEY)
            )
            assert r.status_code == 200, r.text
            assert r.headers["x-gateway-route"] == "small"
            assert r.headers["x-gateway-reason"] == "budget"
            assert r.headers["x-gateway-backend"] == "small-a"
        assert gw.metric("gateway_rate_limited_total", {"limit": "budget"}) == 2
        assert gw.metric("gateway_decisions_total", {"route": "small", "reason": "budget"}) == 2
        # a pinned model is downgraded too: the budget is the key owner's decision
        pinned = await gw.client.post(
            "/v1/chat/completions",
            json={"model": "m-big", "messages": [{"role": "user", "content": "hi"}]},
            headers=bearer(LIMITED_KEY),
        )
        assert pinned.headers["x-gateway-route"] == "small"
        # other keys are not affected
        other = await gw.client.post("/v1/chat/completions", json=chat("prove it"), headers=bearer(OTHER_KEY))
        assert other.headers["x-gateway-reason"] == "allowed_routes"


async def test_budget_reject_answers_429_with_retry_after(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    keys = write_keys(tmp_path, "{budget: {usd: 0.0001, per: hour, action: reject}}")
    async with gateway_factory(keys_file=keys) as gw:
        ok = await gw.client.post("/v1/chat/completions", json=chat("prove it"), headers=bearer(LIMITED_KEY))
        assert ok.status_code == 200
        calls = len(gw.upstream.calls)
        r = await gw.client.post("/v1/chat/completions", json=chat("prove it"), headers=bearer(LIMITED_KEY))
        assert_429(r, "budget_exceeded")
        assert "budget of $0.00 per hour" in r.json()["error"]["message"]
        assert int(r.headers["retry-after"]) <= 3600
        assert len(gw.upstream.calls) == calls  # nothing was forwarded
        assert gw.metric("gateway_rate_limited_total", {"limit": "budget"}) == 1


async def test_requests_per_minute_with_a_fake_clock(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    keys = write_keys(tmp_path, "{requests_per_min: 3}")
    async with gateway_factory(keys_file=keys) as gw:
        clock = FakeClock()
        assert gw.state.access is not None
        gw.state.access.store = MemoryStore(clock)
        statuses = []
        for _ in range(5):
            r = await gw.client.post("/v1/chat/completions", json=chat("hi"), headers=bearer(LIMITED_KEY))
            statuses.append(r.status_code)
        assert statuses == [200, 200, 200, 429, 429]
        assert_429(r, "rate_limit_exceeded")
        assert r.headers["retry-after"] == "60"
        assert gw.metric("gateway_rate_limited_total", {"limit": "requests"}) == 2
        clock.advance(60)
        r = await gw.client.post("/v1/chat/completions", json=chat("hi"), headers=bearer(LIMITED_KEY))
        assert r.status_code == 200


async def test_tokens_per_minute_counts_prompt_and_completion(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    keys = write_keys(tmp_path, "{tokens_per_min: 30}")
    async with gateway_factory(keys_file=keys) as gw:
        gw.state.access.store = MemoryStore(FakeClock())  # type: ignore[union-attr]
        first = await gw.client.post("/v1/chat/completions", json=chat("hi"), headers=bearer(LIMITED_KEY))
        assert first.status_code == 200
        prompt = int(first.headers["x-gateway-prompt-tokens"])
        # charged: the counted prompt before forwarding, the upstream's 5 completion tokens after
        used = prompt + 5
        statuses = [first.status_code]
        while used + prompt <= 30:
            r = await gw.client.post("/v1/chat/completions", json=chat("hi"), headers=bearer(LIMITED_KEY))
            statuses.append(r.status_code)
            used += prompt + 5
        refused = await gw.client.post("/v1/chat/completions", json=chat("hi"), headers=bearer(LIMITED_KEY))
        assert set(statuses) == {200}
        assert_429(refused, "rate_limit_exceeded")
        assert "30 tokens per minute" in refused.json()["error"]["message"]
        assert gw.metric("gateway_rate_limited_total", {"limit": "tokens"}) == 1


async def test_redis_down_fails_open_or_closed(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    from tests.e2e.procs import free_port

    keys = write_keys(tmp_path, "{requests_per_min: 100}")
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with gateway_factory(keys_file=keys, redis_url=dead, limiter_fail_mode="closed") as gw:
        r = await gw.client.post("/v1/chat/completions", json=chat("hi"), headers=bearer(LIMITED_KEY))
        assert r.status_code == 503 and r.json()["error"]["code"] == "limiter_unavailable"
        assert r.headers["retry-after"] == "1"
        assert gw.metric("gateway_limiter_store_errors_total") >= 1
        # keys without limits do not need the store
        free = await gw.client.post("/v1/chat/completions", json=chat("hi"), headers=bearer(OTHER_KEY))
        assert free.status_code == 200
    async with gateway_factory(keys_file=keys, redis_url=dead, limiter_fail_mode="open") as gw:
        for _ in range(3):
            r = await gw.client.post("/v1/chat/completions", json=chat("hi"), headers=bearer(LIMITED_KEY))
            assert r.status_code == 200
        assert gw.metric("gateway_limiter_store_errors_total") >= 1
