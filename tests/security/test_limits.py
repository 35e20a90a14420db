"""The limiter as a unit: fixed windows on an injected clock, and the admission rules."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from gateway.auth import ApiKey, Budget, KeyLimits, KeyRing
from gateway.errors import Forbidden, NotReady, RateLimited
from gateway.limits import AccessControl, Charge, MemoryStore, Meter, Reading, StoreUnavailable
from gateway.metrics import GatewayMetrics
from gateway.runtime import compile_policy
from gateway.types import ChatRequest, Decision, Reason, Usage
from tests.gateway.conftest import make_policy
from tests.security.conftest import FakeClock


def meter(limit: int, amount: int = 1, *, kind: str = "requests", blocking: bool = True) -> Meter:
    return Meter("k", kind, 60, limit, amount, blocking)  # type: ignore[arg-type]


async def test_counts_up_to_the_limit_then_refuses_without_counting() -> None:
    store = MemoryStore(FakeClock())
    results = [(await store.check([meter(3)]))[0] for _ in range(5)]
    assert [r.allowed for r in results] == [True, True, True, False, False]
    assert [r.used for r in results] == [0, 1, 2, 3, 3]  # refused requests add nothing


async def test_window_resets_at_the_minute_boundary() -> None:
    clock = FakeClock(1_700_000_020.0)  # 40 s into a minute
    store = MemoryStore(clock)
    assert (await store.check([meter(1)]))[0].allowed
    refused = (await store.check([meter(1)]))[0]
    assert not refused.allowed
    assert refused.reset_s == pytest.approx(20.0)
    clock.advance(19.9)
    assert not (await store.check([meter(1)]))[0].allowed
    clock.advance(0.2)
    assert (await store.check([meter(1)]))[0].allowed


async def test_amounts_are_added_only_when_every_blocking_meter_allows() -> None:
    store = MemoryStore(FakeClock())
    tokens = meter(100, 60, kind="tokens")
    budget_full = Meter("k", "budget", 86_400, 10, 0)
    store.charge([Charge("k", "budget", 86_400, 10)])
    readings = await store.check([tokens, budget_full])
    assert [r.allowed for r in readings] == [True, False]
    # the budget blocked, so the tokens were not taken
    assert (await store.check([meter(100, 100, kind="tokens")]))[0].allowed
    # a non-blocking (downgrade) budget does not stop the tokens being counted
    soft = Meter("k", "budget", 86_400, 10, 0, blocking=False)
    await store.check([meter(100, 60, kind="tokens"), soft])
    assert not (await store.check([meter(100, 60, kind="tokens")]))[0].allowed


async def test_charges_count_against_later_checks_and_a_budget_refuses_at_its_limit() -> None:
    store = MemoryStore(FakeClock())
    store.charge([Charge("k", "budget", 86_400, 9)])
    assert (await store.check([Meter("k", "budget", 86_400, 10, 0)]))[0].allowed
    store.charge([Charge("k", "budget", 86_400, 1)])
    assert not (await store.check([Meter("k", "budget", 86_400, 10, 0)]))[0].allowed


async def test_keys_are_counted_apart() -> None:
    store = MemoryStore(FakeClock())
    assert (await store.check([Meter("a", "requests", 60, 1, 1)]))[0].allowed
    assert (await store.check([Meter("b", "requests", 60, 1, 1)]))[0].allowed
    assert not (await store.check([Meter("a", "requests", 60, 1, 1)]))[0].allowed


# ---------------------------------------------------------------- admission


def request(**extra: object) -> ChatRequest:
    return ChatRequest("chat", {"messages": []}, "auto", False, False, None, "r1", **extra)  # type: ignore[arg-type]


def decision(
    route: str = "frontier", reason: Reason = Reason.CLASSIFIER, prompt_tokens: int = 50
) -> Decision:
    runtime = compile_policy(make_policy(), {"TEST_BIG_KEY": "x"})
    return Decision(route, runtime.routes[route], reason, "classifier said so", prompt_tokens=prompt_tokens)


def key(
    *,
    routes: tuple[str, ...] | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    budget: Budget | None = None,
) -> ApiKey:
    limits = KeyLimits(rpm, tpm, budget) if rpm or tpm or budget else None
    return ApiKey("team", "user", routes, limits, b"\0" * 32)


class Fixture:
    def __init__(self, *, fail_open: bool = True) -> None:
        self.clock = FakeClock()
        self.registry = CollectorRegistry()
        self.metrics = GatewayMetrics(self.registry)
        self.store = MemoryStore(self.clock)
        self.access = AccessControl(KeyRing(()), self.store, fail_open=fail_open, metrics=self.metrics)
        self.runtime = compile_policy(make_policy(), {"TEST_BIG_KEY": "x"})

    def limited(self, limit: str) -> float:
        return self.registry.get_sample_value("gateway_rate_limited_total", {"limit": limit}) or 0.0


async def test_requests_per_minute_refuses_with_retry_after_and_counts() -> None:
    f = Fixture()
    k = key(rpm=2)
    await f.access.admit_request(k)
    await f.access.admit_request(k)
    with pytest.raises(RateLimited) as info:
        await f.access.admit_request(k)
    assert info.value.status == 429 and info.value.error_type == "rate_limit_error"
    assert info.value.headers["retry-after"] == "60"
    assert "2 requests per minute" in info.value.message
    assert f.limited("requests") == 1


async def test_tokens_per_minute_charges_prompt_then_completion() -> None:
    f = Fixture()
    k = key(tpm=200)
    d = decision(prompt_tokens=100)
    assert await f.access.admit(k, request(), d, f.runtime) == d
    f.access.settle(k, Usage(prompt_tokens=100, completion_tokens=60), f.runtime.backends["big-a"])
    # 160 used: another 100-token prompt does not fit, a 40-token one does
    with pytest.raises(RateLimited, match="200 tokens per minute"):
        await f.access.admit(k, request(), d, f.runtime)
    await f.access.admit(k, request(), decision(prompt_tokens=40), f.runtime)
    assert f.limited("tokens") == 1
    f.clock.advance(60)
    await f.access.admit(k, request(), d, f.runtime)


async def test_a_prompt_larger_than_the_token_limit_says_so() -> None:
    f = Fixture()
    with pytest.raises(RateLimited, match="exceed"):
        await f.access.admit(key(tpm=10), request(), decision(prompt_tokens=11), f.runtime)


async def test_budget_reject_refuses_once_spent() -> None:
    f = Fixture()
    k = key(budget=Budget(nano_usd=1_000, window_s=86_400, reject=True, downgrade_route=None))
    d = decision()
    assert await f.access.admit(k, request(), d, f.runtime) == d
    f.access.settle(k, Usage(prompt_tokens=1000, completion_tokens=0), f.runtime.backends["big-a"])
    with pytest.raises(RateLimited) as info:
        await f.access.admit(k, request(), d, f.runtime)
    assert info.value.code == "budget_exceeded"
    assert "budget of $0.00 per day" in info.value.message
    assert int(info.value.headers["retry-after"]) > 0
    assert f.limited("budget") == 1


async def test_budget_downgrade_routes_to_the_cheaper_route() -> None:
    f = Fixture()
    k = key(budget=Budget(nano_usd=1_000, window_s=86_400, reject=False, downgrade_route="small"))
    f.access.settle(k, Usage(prompt_tokens=1000), f.runtime.backends["big-a"])
    out = await f.access.admit(k, request(), decision(), f.runtime)
    assert out.route == "small" and out.reason is Reason.BUDGET
    assert out.backends == f.runtime.routes["small"]
    assert "budget" in out.explanation
    assert f.limited("budget") == 1


async def test_budget_downgrade_that_cannot_serve_the_request_rejects() -> None:
    f = Fixture()
    k = key(budget=Budget(nano_usd=1_000, window_s=86_400, reject=False, downgrade_route="small"))
    f.access.settle(k, Usage(prompt_tokens=1000), f.runtime.backends["big-a"])
    too_big_for_small = decision(prompt_tokens=9_000)  # route small: small-a 1000 tokens, big-a 8000
    with pytest.raises(RateLimited, match="cannot serve"):
        await f.access.admit(k, request(), too_big_for_small, f.runtime)


async def test_allowed_routes_move_automatic_decisions_and_refuse_explicit_ones() -> None:
    f = Fixture()
    k = key(routes=("small", "long_context"))
    moved = await f.access.admit(k, request(), decision("frontier"), f.runtime)
    assert moved.route == "small" and moved.reason is Reason.ALLOWED_ROUTES
    assert moved.backends == ("small-a", "big-a")
    # the first allowed route that fits: small's backends hold 8000 tokens at most, long-a 100000
    fits_long = await f.access.admit(k, request(), decision("frontier", prompt_tokens=9000), f.runtime)
    assert fits_long.route == "long_context" and fits_long.backends == ("long-a",)
    k = key(routes=("small", "rag"))
    with pytest.raises(Forbidden, match="may not use route 'frontier'"):
        await f.access.admit(k, request(), decision("frontier", Reason.PINNED), f.runtime)
    with pytest.raises(Forbidden, match="none of its routes"):
        await f.access.admit(k, request(), decision("frontier", prompt_tokens=9000), f.runtime)
    allowed = decision("rag")
    assert await f.access.admit(k, request(), allowed, f.runtime) is allowed


class DownStore(MemoryStore):
    async def check(self, meters: Sequence[Meter]) -> tuple[Reading, ...]:
        raise StoreUnavailable("down")


async def test_store_down_fails_open_or_closed_and_counts() -> None:
    for fail_open in (True, False):
        f = Fixture(fail_open=fail_open)
        f.access.store = DownStore()
        if fail_open:
            await f.access.admit_request(key(rpm=1))
        else:
            with pytest.raises(NotReady) as info:
                await f.access.admit_request(key(rpm=1))
            assert info.value.status == 503 and info.value.code == "limiter_unavailable"
        assert f.registry.get_sample_value("gateway_limiter_store_errors_total") == 1
