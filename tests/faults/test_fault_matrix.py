"""The fault matrix: every upstream failure mode, over real sockets, against documented behaviour.

For each fault: the status (or, after a stream's first chunk, the SSE error event), an elapsed
time bounded by the configured timeouts, the metric with the right cause, and no upstream
connection left behind (see docs/failure-semantics.md).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx
import pytest

from tests.faults.conftest import CONNECT_MS, FIRST_BYTE_MS, MARGIN_S, TOTAL_MS, Stack

pytestmark = pytest.mark.e2e

CONNECT_S, FIRST_BYTE_S, TOTAL_S = CONNECT_MS / 1000, FIRST_BYTE_MS / 1000, TOTAL_MS / 1000


def chat(stream: bool = False) -> dict[str, object]:
    return {"model": "auto", "messages": [{"role": "user", "content": "hello"}], "stream": stream}


def post(stack: Stack, route: str, *, stream: bool = False) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    r = httpx.post(
        f"{stack.gateway}/v1/chat/completions",
        json=chat(stream),
        headers={"x-gateway-route": route},
        timeout=30,
    )
    return r, time.perf_counter() - started


@dataclass(frozen=True)
class Case:
    backend: str
    stream: bool
    status: int
    code: str | None  # error code in the body, or in the SSE error event for committed streams
    cause: str  # gateway_upstream_errors_total{cause}
    bound_s: float  # the timeout that bounds this failure
    fallback: bool = True  # with a healthy backend next, the client gets a 200 from it


CASES = [
    Case("f500", False, 502, "bad_gateway", "status_5xx", 0),
    Case("f502", True, 502, "bad_gateway", "status_5xx", 0),
    Case("f503", False, 502, "bad_gateway", "status_5xx", 0),
    Case("f429", False, 429, "upstream_rate_limited", "status_429", 0),
    Case("refused", False, 502, "bad_gateway", "connect_error", CONNECT_S),
    Case("blackhole", False, 504, "upstream_timeout", "connect_timeout", CONNECT_S),
    Case("blackhole", True, 504, "upstream_timeout", "connect_timeout", CONNECT_S),
    Case("slow", False, 504, "upstream_timeout", "first_byte_timeout", FIRST_BYTE_S),
    Case("slow", True, 504, "upstream_timeout", "first_byte_timeout", FIRST_BYTE_S),
    Case("reset-early", False, 502, "bad_gateway", "protocol_error", 0),
    # committed at the first body bytes: no fallback from here on
    Case("stall", True, 200, "upstream_stream_stalled", "stream_interrupted", FIRST_BYTE_S, fallback=False),
    Case("stall", False, 504, "upstream_stalled", "first_byte_timeout", FIRST_BYTE_S, fallback=False),
    Case("reset", True, 200, "upstream_stream_broken", "stream_interrupted", 0, fallback=False),
    Case("reset", False, 502, "bad_gateway", "protocol_error", 0, fallback=False),
    Case("json", False, 502, "upstream_malformed", "protocol_error", 0, fallback=False),
    Case("sse", True, 200, "bad_gateway", "stream_interrupted", 0, fallback=False),
]


def sse_events(text: str) -> list[str]:
    return [line[6:] for line in text.splitlines() if line.startswith("data: ")]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.backend}-{'stream' if c.stream else 'json'}")
def test_fault_alone_gives_documented_error(stack: Stack, case: Case) -> None:
    before = stack.metric("gateway_upstream_errors_total", backend=case.backend, cause=case.cause)
    for _ in range(3):  # repeated: a leak would show as connections growing with failures
        r, elapsed = post(stack, case.backend, stream=case.stream)
        assert elapsed < case.bound_s + MARGIN_S, f"took {elapsed:.2f} s"
        assert r.status_code == case.status, r.text
        if case.status == 200:  # a committed stream: ends with an error event, never [DONE]
            events = sse_events(r.text)
            assert events[-1] != "[DONE]"
            error = json.loads(events[-1])["error"]
            assert error["code"] == case.code
        else:
            error = r.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert error["code"] == case.code
        if case.status == 429:
            assert r.headers["retry-after"] == "1"
    after = stack.metric("gateway_upstream_errors_total", backend=case.backend, cause=case.cause)
    assert after - before == 3
    assert_no_leak(stack)


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.fallback], ids=lambda c: f"{c.backend}-{'stream' if c.stream else 'json'}"
)
def test_fault_before_first_byte_falls_back(stack: Stack, case: Case) -> None:
    labels = {"from_backend": case.backend, "to_backend": "ok", "cause": case.cause}
    before = stack.metric("gateway_fallbacks_total", **labels)
    r, elapsed = post(stack, f"{case.backend}-fb", stream=case.stream)
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-backend"] == "ok"
    assert r.headers["x-gateway-fallbacks"] == "1"
    assert elapsed < case.bound_s + MARGIN_S
    if case.stream:
        assert sse_events(r.text)[-1] == "[DONE]"
    assert stack.metric("gateway_fallbacks_total", **labels) - before == 1
    assert_no_leak(stack)


def test_malformed_sse_is_relayed_then_closed_with_an_error_event(stack: Stack) -> None:
    r, _ = post(stack, "sse", stream=True)
    events = sse_events(r.text)
    assert json.loads(events[0])["object"] == "chat.completion.chunk"
    assert "[DONE]" not in events
    assert "without [DONE]" in json.loads(events[-1])["error"]["message"]


def test_total_timeout_cuts_a_stream_at_its_deadline(stack: Stack) -> None:
    """'capped' sends a token a second (each within first_byte_ms) but has total_ms 1500: the
    stream ends with a timeout event at the deadline, not at the next token after it."""
    before = stack.metric("gateway_upstream_errors_total", backend="capped", cause="stream_interrupted")
    r, elapsed = post(stack, "capped", stream=True)
    assert r.status_code == 200
    events = sse_events(r.text)
    assert json.loads(events[-1])["error"]["code"] == "upstream_total_timeout"
    assert 1.4 < elapsed < 1.5 + 0.4
    after = stack.metric("gateway_upstream_errors_total", backend="capped", cause="stream_interrupted")
    assert after - before == 1
    assert_no_leak(stack)


def assert_no_leak(stack: Stack) -> None:
    # Failed exchanges close their connection or return it to the keep-alive pool; either way
    # the count stays at the pool's steady size instead of growing with the failures.
    deadline = time.monotonic() + 2
    while True:
        stats = stack.sim_stats()
        pooled = stack.upstream_connections()
        if (stats["in_flight"], pooled <= 2) == (0, True) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert stats["in_flight"] == 0
    assert pooled <= 2, f"{pooled} connections from the gateway to the simulator"
