"""The gateway as a real process, over real loopback sockets, in front of the real simulator."""

from __future__ import annotations

import json
import time

import httpx
import pytest

pytestmark = pytest.mark.e2e


def chat(text: str, **extra: object) -> dict[str, object]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], **extra}


def test_non_streaming_answer_with_routing_headers(rules_gateway: str) -> None:
    r = httpx.post(
        f"{rules_gateway}/v1/chat/completions",
        json=chat("Classify this ticket: printer on fire"),
        headers={"x-gateway-route": "small"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-route"] == "small"
    assert r.headers["x-gateway-backend"] == "small-sim"
    assert r.headers["x-gateway-reason"] == "override"
    body = r.json()
    assert body["model"] == "sim-small"
    assert body["usage"]["prompt_tokens"] > 0
    assert float(r.headers["x-gateway-cost-usd"]) > 0


def test_fallback_past_a_503_and_a_refused_connection(rules_gateway: str) -> None:
    r = httpx.post(f"{rules_gateway}/v1/chat/completions", json=chat("Design a cache"), timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-backend"] == "frontier-sim"
    assert r.headers["x-gateway-fallbacks"] == "2"
    metrics = httpx.get(f"{rules_gateway}/metrics").text
    assert 'gateway_fallbacks_total{cause="status_5xx",from_backend="broken",to_backend="refused"}' in metrics
    assert (
        'gateway_fallbacks_total{cause="connect_error",from_backend="refused",to_backend="frontier-sim"}'
        in metrics
    )


def test_streaming_relays_chunks_as_they_come(rules_gateway: str) -> None:
    events: list[str] = []
    first_at = None
    started = time.perf_counter()
    with httpx.stream(
        "POST",
        f"{rules_gateway}/v1/chat/completions",
        json=chat("Write a haiku about queues", stream=True, max_tokens=40),
        headers={"x-gateway-route": "small"},
        timeout=10,
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-gateway-backend"] == "small-sim"
        for line in r.iter_lines():
            if line.startswith("data: "):
                first_at = first_at or time.perf_counter()
                events.append(line[6:])
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert not any(c.get("usage") for c in chunks)  # not asked for: the gateway's own usage chunk is hidden
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text
    assert first_at is not None and first_at - started < 5


def test_streaming_with_usage_when_asked(rules_gateway: str) -> None:
    r = httpx.post(
        f"{rules_gateway}/v1/chat/completions",
        json=chat("Hello", stream=True, stream_options={"include_usage": True}, max_tokens=10),
        headers={"x-gateway-route": "small"},
        timeout=10,
    )
    usage = [
        json.loads(line[6:])
        for line in r.text.splitlines()
        if line.startswith("data: {") and '"usage":{' in line
    ]
    assert len(usage) == 1
    assert usage[0]["usage"]["completion_tokens"] >= 1


def test_long_input_goes_to_long_context(rules_gateway: str) -> None:
    r = httpx.post(f"{rules_gateway}/v1/route", json=chat("lorem ipsum " * 4000), timeout=10)
    assert r.json()["route"] == "long_context"
    assert r.json()["reason"] == "context_length"


def test_bad_request_is_openai_shaped(rules_gateway: str) -> None:
    r = httpx.post(
        f"{rules_gateway}/v1/chat/completions",
        content=b'{"messages": "nope"}',
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "messages"


def test_models_and_readiness(rules_gateway: str) -> None:
    models = httpx.get(f"{rules_gateway}/v1/models").json()
    ids = {m["id"] for m in models["data"]}
    assert {"auto", "sim-small", "sim-frontier"} <= ids
    ready = httpx.get(f"{rules_gateway}/readyz").json()
    assert ready["ready"] is True
