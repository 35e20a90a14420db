"""A hostile client cannot create label values: every value comes from the policy or an enum."""

from __future__ import annotations

import random
import string

import httpx
import pytest
from prometheus_client import CollectorRegistry

from gateway.types import Reason
from tests.gateway.conftest import make_policy
from tests.gateway.fakes import MockUpstream
from tests.observability.conftest import gateway_client

Series = frozenset[tuple[str, tuple[tuple[str, str], ...]]]

CAUSES = {
    "connect_error", "connect_timeout", "first_byte_timeout", "total_timeout", "status_5xx",
    "status_429", "status_4xx", "protocol_error", "stream_interrupted", "circuit_open",
}  # fmt: skip


def allowed_values() -> dict[str, set[str]]:
    policy = make_policy()
    backends = {b.name for b in policy.backends} | {"none"}
    return {
        "route": set(policy.routes) | {"none"},
        "backend": backends,
        "from_backend": backends,
        "to_backend": backends,
        "status_class": {"2xx", "4xx", "5xx"},
        "stream": {"true", "false"},
        "stage": {"tokenize", "rules", "embed", "classify"},
        "reason": {r.value for r in Reason},
        "direction": {"input", "output", "cached_input", "reasoning"},
        "cause": CAUSES,
        "limit": {"requests", "tokens", "budget"},
        "policy": {policy.name},
        "encoder": {"fake"},
        "head": {"keyword"},
        "artefact": {"none"},
    }


def series(registry: CollectorRegistry) -> Series:
    return frozenset(
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "le")))
        for family in registry.collect()
        for s in family.samples
    )


def junk(rng: random.Random, n: int = 12) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits + "-_./:") for _ in range(n))


async def hostile(client: httpx.AsyncClient, rng: random.Random, i: int, sent: list[str]) -> None:
    token = "hx" + junk(rng)
    sent.append(token)
    chat = {"model": "auto", "messages": [{"role": "user", "content": f"prove {token}"}]}
    kind = i % 10
    if kind == 0:
        await client.post("/v1/chat/completions", json={**chat, "model": token})
    elif kind == 1:
        await client.post(f"/v1/{token}", json=chat)
    elif kind == 2:
        await client.post("/v1/chat/completions", json=chat, headers={"x-gateway-route": token})
    elif kind == 3:
        await client.post(
            "/v1/chat/completions", json=chat, headers={"x-request-id": token, f"x-{token[:8]}": token}
        )
    elif kind == 4:
        await client.post("/v1/chat/completions", json={**chat, token: token, "stream": token})
    elif kind == 5:
        await client.post("/v1/chat/completions", content=token.encode() + b"{\xff")
    elif kind == 6:
        await client.post("/v1/completions", json={"model": token, "prompt": token})
    elif kind == 7:
        await client.post(
            "/v1/chat/completions",
            json={**chat, "model": f"m-small/{token}"},
            headers={"x-gateway-route": "small"},
        )
    elif kind == 8:
        await client.request(rng.choice(["GET", "PUT", "DELETE", "PATCH"]), f"/{token}")
    else:
        await client.post(
            "/v1/chat/completions",
            json={**chat, "stream": True, "stream_options": {"include_usage": token}, "user": token},
            headers={"authorization": f"Bearer {token}", "x-gateway-route": "rag"},
        )


async def test_hostile_requests_create_no_label_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_BIG_KEY", "sk-test")
    registry = CollectorRegistry()
    rng = random.Random(7)
    sent: list[str] = []
    async with gateway_client(make_policy(), MockUpstream().handler, registry) as client:
        for i in range(100):
            await hostile(client, rng, i, sent)
        after_first = series(registry)
        for i in range(100, 200):
            await hostile(client, rng, i, sent)
        after_second = series(registry)

    # Another 100 requests of the same kinds with fresh random values add no series at all.
    assert after_second == after_first, sorted(after_second - after_first)
    allowed = allowed_values()
    for name, labels in after_second:
        for key, value in labels:
            assert not any(token in value for token in sent), f"{name}: request text in label {key}={value}"
            if key in allowed:
                assert value in allowed[key], f"{name}: {key}={value!r} is not from the policy or an enum"
    requests = registry.get_sample_value
    total = sum(
        requests("gateway_requests_total", dict(labels)) or 0.0
        for name, labels in after_second
        if name == "gateway_requests_total"
    )
    assert total >= 160  # the request paths were exercised (unknown paths never reach the proxy)
