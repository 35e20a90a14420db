"""Circuit breakers: the state machine on a fake clock, then wired into the app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.config import CircuitBreaker
from gateway.health import CircuitBreakers, CircuitState
from gateway.settings import Settings
from gateway.state import GatewayState
from tests.gateway.conftest import make_policy
from tests.gateway.fakes import MockUpstream, keyword_factory


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


Events = list[tuple[str, CircuitState | None]]


def breakers(clock: FakeClock, events: Events | None = None, **kw: object) -> CircuitBreakers:
    settings = CircuitBreaker.model_validate(
        {"consecutive_failures": 3, "error_ratio": 0.5, "window_s": 10, "min_requests": 6, "open_s": 5, **kw}
    )

    def listener(name: str, state: CircuitState | None) -> None:
        if events is not None:
            events.append((name, state))

    return CircuitBreakers(settings, ["a", "b"], clock=clock, on_change=listener)


def fail(cb: CircuitBreakers, backend: str, times: int) -> None:
    for _ in range(times):
        assert cb.allow(backend)
        cb.record(backend, ok=False)


def test_opens_after_consecutive_failures_and_only_for_that_backend() -> None:
    clock = FakeClock()
    cb = breakers(clock)
    fail(cb, "a", 2)
    assert cb.state("a") is CircuitState.CLOSED
    fail(cb, "a", 1)
    assert cb.state("a") is CircuitState.OPEN
    assert not cb.allow("a")
    assert cb.allow("b")


def test_a_success_resets_the_consecutive_count() -> None:
    cb = breakers(FakeClock(), min_requests=100)
    for _ in range(5):
        fail(cb, "a", 2)
        cb.record("a", ok=True)
    assert cb.state("a") is CircuitState.CLOSED


def test_error_ratio_opens_once_the_window_has_enough_requests() -> None:
    clock = FakeClock()
    cb = breakers(clock, consecutive_failures=100)
    for _ in range(2):  # 4 requests, 50% failed, below min_requests
        cb.record("a", ok=False)
        cb.record("a", ok=True)
    assert cb.state("a") is CircuitState.CLOSED
    cb.record("a", ok=True)
    cb.record("a", ok=False)  # 6 requests, 3 failed: ratio 0.5 reached
    assert cb.state("a") is CircuitState.OPEN


def test_old_outcomes_leave_the_window() -> None:
    clock = FakeClock()
    cb = breakers(clock, consecutive_failures=100)
    for _ in range(5):
        cb.record("a", ok=False)
    clock.advance(11)  # all of them are older than window_s now
    cb.record("a", ok=True)
    cb.record("a", ok=False)
    assert cb.snapshot()["a"]["window_requests"] == 2
    assert cb.state("a") is CircuitState.CLOSED


def test_half_open_lets_bounded_probes_through_and_success_closes() -> None:
    clock = FakeClock()
    events: Events = []
    cb = breakers(clock, events, half_open_probes=2)
    fail(cb, "a", 3)
    clock.advance(4.9)
    assert not cb.allow("a")
    clock.advance(0.2)
    assert cb.state("a") is CircuitState.HALF_OPEN
    assert cb.allow("a")
    assert cb.allow("a")
    assert not cb.allow("a")  # two probes in flight: no third
    cb.record("a", ok=True)
    assert cb.state("a") is CircuitState.CLOSED
    assert cb.allow("a")
    assert [s for name, s in events if name == "a"] == [
        CircuitState.CLOSED,
        CircuitState.OPEN,
        CircuitState.HALF_OPEN,
        CircuitState.CLOSED,
    ]


def test_a_failed_probe_reopens_for_a_full_cool_down() -> None:
    clock = FakeClock()
    cb = breakers(clock)
    fail(cb, "a", 3)
    clock.advance(5)
    assert cb.allow("a")
    cb.record("a", ok=False)
    assert cb.state("a") is CircuitState.OPEN
    clock.advance(4)
    assert not cb.allow("a")
    assert cb.snapshot()["a"]["opened_total"] == 2


def test_a_probe_that_never_reports_is_given_back() -> None:
    clock = FakeClock()
    cb = breakers(clock)
    fail(cb, "a", 3)
    clock.advance(5)
    assert cb.allow("a")  # this probe's client goes away: no record() ever comes
    assert not cb.allow("a")
    clock.advance(5)
    assert cb.allow("a")


def test_outcomes_of_requests_started_before_opening_change_nothing() -> None:
    clock = FakeClock()
    cb = breakers(clock)
    fail(cb, "a", 3)
    cb.record("a", ok=True)
    assert cb.state("a") is CircuitState.OPEN


def test_reconfigure_keeps_state_of_kept_backends() -> None:
    clock = FakeClock()
    events: Events = []
    cb = breakers(clock, events)
    fail(cb, "a", 3)
    cb.reconfigure(cb.settings.model_copy(update={"open_s": 60.0}), ["a", "c"])
    assert cb.state("a") is CircuitState.OPEN
    assert set(cb.snapshot()) == {"a", "c"}
    assert ("b", None) in events
    assert ("c", CircuitState.CLOSED) in events
    clock.advance(30)
    assert not cb.allow("a")  # the new cool-down applies


def test_disabled_breaker_always_allows() -> None:
    cb = breakers(FakeClock(), enabled=False)
    fail(cb, "a", 10)
    assert cb.allow("a")
    assert cb.state("a") is CircuitState.CLOSED


def test_settings_are_strict() -> None:
    with pytest.raises(ValueError, match="error_ratio"):
        CircuitBreaker.model_validate({"error_ratio": 1.5})
    with pytest.raises(ValueError, match="extra"):
        CircuitBreaker.model_validate({"open_ms": 5})


# -- in the app -------------------------------------------------------------------------------

BREAKER = """
forwarding:
  circuit_breaker: {consecutive_failures: 2, min_requests: 100, open_s: 0.3}
"""


@pytest.fixture
async def app(
    monkey_env: None, upstream: MockUpstream, registry: CollectorRegistry
) -> AsyncIterator[FastAPI]:
    from tests.gateway.conftest import POLICY_YAML

    application = create_app(
        Settings(),
        policy=make_policy(POLICY_YAML + BREAKER),
        classifier_factory=keyword_factory,
        transport=upstream.transport(),
        registry=registry,
    )
    async with application.router.lifespan_context(application):
        for _ in range(200):
            if application.state.gateway.active is not None:
                break
            await asyncio.sleep(0.01)
        yield application


def gw(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test")


def prove() -> dict[str, object]:
    return {"model": "auto", "messages": [{"role": "user", "content": "prove it"}]}  # -> frontier


async def test_all_backends_open_fails_fast_with_503(
    app: FastAPI, upstream: MockUpstream, registry: CollectorRegistry
) -> None:
    upstream.failures.update({"m-big": 503, "m-big2": 500})
    async with gw(app) as c:
        for _ in range(2):
            r = await c.post("/v1/chat/completions", json=prove())
            assert r.status_code == 502
        calls = len(upstream.calls)
        r = await c.post("/v1/chat/completions", json=prove())
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "no_healthy_backend"
        assert len(upstream.calls) == calls  # nothing was sent upstream
        assert registry.get_sample_value("gateway_circuit_state", {"backend": "big-a"}) == 2
        assert registry.get_sample_value("gateway_circuit_state", {"backend": "small-a"}) == 0
        ready = (await c.get("/readyz")).json()
        assert ready["ready"] is True  # an open circuit is the backend's problem, not this instance's
        assert ready["backends"]["big-a"]["circuit"] == "open"
        assert ready["backends"]["small-a"]["circuit"] == "closed"

        upstream.failures.clear()
        await asyncio.sleep(0.35)  # cool-down over: the next request is a probe, and it succeeds
        r = await c.post("/v1/chat/completions", json=prove())
        assert r.status_code == 200
        assert registry.get_sample_value("gateway_circuit_state", {"backend": "big-a"}) == 0


async def test_rate_limits_do_not_open_the_circuit(app: FastAPI, upstream: MockUpstream) -> None:
    upstream.failures.update({"m-big": 429, "m-big2": 429})
    async with gw(app) as c:
        for _ in range(4):
            r = await c.post("/v1/chat/completions", json=prove())
            assert r.status_code == 429
        ready = (await c.get("/readyz")).json()
    assert ready["backends"]["big-a"]["circuit"] == "closed"
    assert ready["backends"]["big-a"]["window_requests"] == 0


async def test_open_backend_is_skipped_for_the_next_one(
    app: FastAPI, upstream: MockUpstream, registry: CollectorRegistry
) -> None:
    upstream.failures["m-big"] = 503
    async with gw(app) as c:
        for _ in range(2):
            r = await c.post("/v1/chat/completions", json=prove())
            assert r.headers["x-gateway-backend"] == "big-b"
        before = len(upstream.calls)
        r = await c.post("/v1/chat/completions", json=prove())
    assert r.status_code == 200
    assert r.headers["x-gateway-backend"] == "big-b"
    assert len(upstream.calls) == before + 1  # big-a was not tried
    labels = {"from_backend": "big-a", "to_backend": "big-b", "cause": "circuit_open"}
    assert registry.get_sample_value("gateway_fallbacks_total", labels) == 1


async def test_policy_reload_keeps_breaker_state(app: FastAPI, upstream: MockUpstream) -> None:
    from tests.gateway.conftest import POLICY_YAML

    state: GatewayState = app.state.gateway
    upstream.failures["m-big"] = 503
    async with gw(app) as c:
        for _ in range(2):
            await c.post("/v1/chat/completions", json=prove())
        health = state.health
        state.activate(make_policy(POLICY_YAML.replace('version: "7"', 'version: "8"') + BREAKER))
        assert state.health is health
        assert (await c.get("/readyz")).json()["backends"]["big-a"]["circuit"] == "open"
