"""In-process API tests: the real app over httpx.ASGITransport, a mock upstream, a fake classifier."""

from __future__ import annotations

import json

import httpx
import pytest
from prometheus_client import CollectorRegistry

from tests.gateway.fakes import MockUpstream


def chat(text: str, **extra: object) -> dict[str, object]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], **extra}


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_routes_by_classifier_and_explains_in_headers(
    client: httpx.AsyncClient, upstream: MockUpstream
) -> None:
    r = await client.post("/v1/chat/completions", json=chat("Extract the invoice number", temperature=0.2))
    assert r.status_code == 200
    assert r.headers["x-gateway-route"] == "small"
    assert r.headers["x-gateway-backend"] == "small-a"
    assert r.headers["x-gateway-reason"] == "classifier"
    assert r.headers["x-gateway-confidence"] == "0.9000"
    assert len(r.headers["x-request-id"]) == 32
    assert float(r.headers["x-gateway-cost-usd"]) == pytest.approx((10 * 1 + 5 * 2) / 1e6)
    sent = upstream.calls[0]
    assert sent["model"] == "m-small"
    assert sent["temperature"] == 0.2  # fields the gateway does not own pass through
    assert r.json()["choices"][0]["message"]["content"] == "hello"


async def test_low_confidence_escalates(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json=chat("hmm, what now?"))
    assert r.headers["x-gateway-route"] == "frontier"
    assert r.headers["x-gateway-reason"] == "low_confidence"


async def test_pinned_model_goes_to_that_backend_only(
    client: httpx.AsyncClient, upstream: MockUpstream
) -> None:
    r = await client.post(
        "/v1/chat/completions", json={"model": "m-rag", "messages": [{"role": "user", "content": "prove it"}]}
    )
    assert r.headers["x-gateway-reason"] == "pinned"
    assert r.headers["x-gateway-backend"] == "rag-a"
    assert upstream.calls[0]["model"] == "m-rag"


async def test_override_header_allowed_and_refused(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json=chat("prove it"), headers={"x-gateway-route": "rag"})
    assert (r.headers["x-gateway-route"], r.headers["x-gateway-reason"]) == ("rag", "override")
    r = await client.post(
        "/v1/chat/completions", json=chat("prove it"), headers={"x-gateway-route": "frontier"}
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "route_not_allowed"


async def test_long_prompt_goes_to_long_context(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json=chat("word " * 2500))
    assert (r.headers["x-gateway-route"], r.headers["x-gateway-reason"]) == ("long_context", "context_length")


async def test_prompt_that_fits_no_backend_is_413(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json=chat("word " * 120_000))
    assert r.status_code == 413
    assert r.json()["error"]["code"] in ("context_length_exceeded", "request_too_large")


async def test_classified_route_skips_backends_too_small(client: httpx.AsyncClient) -> None:
    # 'extract' -> small; small-a holds 1000 tokens, so the next backend of the route answers.
    r = await client.post("/v1/chat/completions", json=chat("extract " + "field " * 1200))
    assert r.headers["x-gateway-route"] == "small"
    assert r.headers["x-gateway-backend"] == "big-a"


async def test_upstream_key_comes_from_env_and_never_leaks(
    client: httpx.AsyncClient, upstream: MockUpstream
) -> None:
    r = await client.post("/v1/chat/completions", json=chat("prove it"))
    assert upstream.calls[0]["_auth"] == "Bearer sk-test-secret"
    assert "sk-test-secret" not in r.text and "sk-test-secret" not in str(r.headers)


async def test_fallback_on_5xx_before_first_byte(
    client: httpx.AsyncClient, upstream: MockUpstream, registry: CollectorRegistry
) -> None:
    upstream.failures["m-big"] = 503
    r = await client.post("/v1/chat/completions", json=chat("prove it"))
    assert r.status_code == 200
    assert r.headers["x-gateway-backend"] == "big-b"
    assert r.headers["x-gateway-fallbacks"] == "1"
    assert (
        sample(
            registry, "gateway_fallbacks_total", from_backend="big-a", to_backend="big-b", cause="status_5xx"
        )
        == 1
    )


async def test_fallback_on_connect_error(client: httpx.AsyncClient, upstream: MockUpstream) -> None:
    upstream.failures["m-big"] = lambda: httpx.ConnectError("refused")
    r = await client.post("/v1/chat/completions", json=chat("prove it"))
    assert r.headers["x-gateway-backend"] == "big-b"


async def test_all_backends_failing_gives_502_then_504(
    client: httpx.AsyncClient, upstream: MockUpstream
) -> None:
    upstream.failures["m-big"] = 500
    upstream.failures["m-big2"] = 502
    r = await client.post("/v1/chat/completions", json=chat("prove it"))
    assert r.status_code == 502
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert "big-a: status_5xx" in err["message"]
    upstream.failures["m-big2"] = lambda: httpx.ReadTimeout("slow")
    r = await client.post("/v1/chat/completions", json=chat("prove it"))
    assert r.status_code == 504


async def test_all_backends_429_passes_retry_after(client: httpx.AsyncClient, upstream: MockUpstream) -> None:
    upstream.failures["m-big"] = 429
    upstream.failures["m-big2"] = 429
    r = await client.post("/v1/chat/completions", json=chat("prove it"))
    assert r.status_code == 429


async def test_client_fault_from_upstream_is_passed_through(
    client: httpx.AsyncClient, upstream: MockUpstream
) -> None:
    upstream.failures["m-big"] = 400
    r = await client.post("/v1/chat/completions", json=chat("prove it"))
    assert r.status_code == 400
    assert len(upstream.calls) == 1  # not retried elsewhere: the request itself is wrong


async def test_stream_passes_chunks_and_hides_usage_not_asked_for(
    client: httpx.AsyncClient, upstream: MockUpstream, registry: CollectorRegistry
) -> None:
    r = await client.post("/v1/chat/completions", json=chat("prove it", stream=True))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-accel-buffering"] == "no"
    events = [e for e in r.text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    assert not any('"usage"' in e for e in events)
    assert upstream.calls[0]["stream_options"] == {"include_usage": True}
    # ...but the gateway counted the tokens the upstream reported
    assert sample(registry, "gateway_tokens_total", backend="big-a", direction="output") == 2


async def test_stream_keeps_usage_when_asked(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/chat/completions", json=chat("prove it", stream=True, stream_options={"include_usage": True})
    )
    usage_events = [e for e in r.text.split("\n\n") if '"usage"' in e]
    assert len(usage_events) == 1
    assert json.loads(usage_events[0][6:])["usage"]["completion_tokens"] == 2


async def test_missing_usage_is_estimated(
    client: httpx.AsyncClient, upstream: MockUpstream, registry: CollectorRegistry
) -> None:
    upstream.usage = False
    r = await client.post("/v1/chat/completions", json=chat("prove it"))
    assert r.status_code == 200
    assert sample(registry, "gateway_usage_estimated_total", backend="big-a") == 1


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"model": "auto"}', "messages"),
        (b'{"model": "auto", "messages": []}', "messages"),
        (b'{"model": "auto", "messages": [{"role": "wizard", "content": "x"}]}', "messages[0].role"),
        (b'{"model": "auto", "messages": [{"role": "user", "content": 5}]}', "messages[0].content"),
        (b'{"model": 7, "messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "auto", "stream": "yes", "messages": [{"role": "user", "content": "x"}]}', "stream"),
        (
            b'{"model": "auto", "max_tokens": -1, "messages": [{"role": "user", "content": "x"}]}',
            "max_tokens",
        ),
        (b"\xff\xfe{}", None),
        (b"[" * 5000 + b"]" * 5000, None),
    ],
)
async def test_bad_input_is_400_in_openai_shape(
    client: httpx.AsyncClient, body: bytes, param: str | None
) -> None:
    r = await client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


async def test_unknown_model_is_404(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json={**chat("x"), "model": "gpt-9"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"


async def test_huge_body_is_413(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json=chat("x" * 300_000))
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"


async def test_unknown_path_and_method_in_openai_shape(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/nope")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "unknown_url"
    r = await client.get("/v1/chat/completions")
    assert r.status_code == 405


async def test_client_request_id_is_echoed_only_when_safe(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json=chat("prove it"), headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.post("/v1/chat/completions", json=chat("prove it"), headers={"x-request-id": "a b\tc"})
    assert r.headers["x-request-id"] != "a b\tc"


async def test_models_lists_virtual_and_pinnable(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/models")
    ids = [m["id"] for m in r.json()["data"]]
    assert ids[0] == "auto"
    assert {"m-small", "m-rag", "m-long", "m-big"} <= set(ids)
    assert "m-big2" not in ids  # not pinnable


async def test_route_dry_run_forwards_nothing(client: httpx.AsyncClient, upstream: MockUpstream) -> None:
    r = await client.post("/v1/route", json=chat("What does the travel policy say?"))
    assert r.status_code == 200
    body = r.json()
    assert body["route"] == "rag"
    assert body["reason"] == "classifier"
    assert body["backends"] == ["rag-a", "big-a"]
    assert "classifier" in body["explanation"]
    assert upstream.calls == []


async def test_completions_endpoint(client: httpx.AsyncClient, upstream: MockUpstream) -> None:
    r = await client.post("/v1/completions", json={"model": "auto", "prompt": "classify this ticket"})
    assert r.status_code == 200
    assert upstream.calls[0]["_url"] == "http://up.test/v1/completions"


async def test_health_ready_and_metrics(client: httpx.AsyncClient, registry: CollectorRegistry) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["policy"] == "test"
    await client.post("/v1/chat/completions", json=chat("prove it"))
    text = (await client.get("/metrics")).text
    assert 'gateway_requests_total{backend="big-a",route="frontier",status_class="2xx"} 1.0' in text
    assert "gateway_policy_info" in text
    assert sample(registry, "gateway_decisions_total", route="frontier", reason="classifier") == 1
    assert sample(registry, "gateway_in_flight_requests") == 0
