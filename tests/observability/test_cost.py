"""Cost from the upstream's usage (JSON answers and the stream's usage chunk), cached and
reasoning tokens priced, estimates marked; the same figures in the header, metrics and log."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from gateway.config import Policy, parse_policy
from gateway.settings import Settings
from tests.observability.conftest import gateway_client

POLICY = """
name: cost
version: "3"
backends:
  - {name: cheap, path: small, base_url: "http://up.test/v1", model: m-cheap, max_context_tokens: 100000,
     price_per_mtok_in: 1, price_per_mtok_out: 2, price_per_mtok_cached_in: 0.5}
  - {name: dear, path: frontier, base_url: "http://up.test/v1", model: m-dear, max_context_tokens: 100000,
     price_per_mtok_in: 10, price_per_mtok_out: 30, price_per_mtok_cached_in: 5}
routes:
  small: {backends: [cheap]}
  frontier: {backends: [dear]}
  long_context: {backends: [dear]}
default_route: small
baseline_backend: dear
"""
USAGE = {
    "prompt_tokens": 1000,
    "completion_tokens": 500,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 400},
    "completion_tokens_details": {"reasoning_tokens": 200},
}
# 600 uncached + 400 cached input, 500 output (reasoning is part of completion_tokens)
CHEAP = (600 * 1 + 400 * 0.5 + 500 * 2) / 1e6
DEAR = (600 * 10 + 400 * 5 + 500 * 30) / 1e6


def policy() -> Policy:
    return parse_policy(POLICY, Path("cost.yaml"))


async def _events(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def upstream(
    *, send_usage: bool = True
) -> tuple[list[dict[str, object]], Callable[[httpx.Request], httpx.Response]]:
    calls: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        calls.append(body)
        if not body.get("stream"):
            answer: dict[str, object] = {
                "id": "x",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}}],
            }
            if send_usage:
                answer["usage"] = USAGE
            return httpx.Response(200, json=answer)

        def chunk(data: dict[str, object]) -> bytes:
            return (
                b"data: "
                + orjson.dumps({"object": "chat.completion.chunk", "model": body["model"], **data})
                + b"\n\n"
            )

        parts = [chunk({"choices": [{"index": 0, "delta": {"content": "abcdefgh" * 10}}]})]
        wants = bool((body.get("stream_options") or {}).get("include_usage"))
        if wants and send_usage:
            parts.append(chunk({"choices": [], "usage": USAGE}))
        parts.append(b"data: [DONE]\n\n")
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=_events(parts))

    return calls, handler


def log_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_json_answer_cost_prices_cached_and_reasoning_tokens(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    log = tmp_path / "decisions.jsonl"
    _, handler = upstream()
    settings = Settings(decision_log=str(log))
    async with gateway_client(policy(), handler, registry, settings) as client:
        r = await client.post(
            "/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
        )
    assert r.status_code == 200
    assert float(r.headers["x-gateway-cost-usd"]) == pytest.approx(CHEAP)
    assert value(registry, "gateway_cost_usd_total", route="small", backend="cheap") == pytest.approx(CHEAP)
    assert value(
        registry, "gateway_baseline_cost_usd_total", route="small", backend="cheap"
    ) == pytest.approx(DEAR)
    assert value(registry, "gateway_savings_usd_total", route="small", backend="cheap") == pytest.approx(
        DEAR - CHEAP
    )
    assert value(registry, "gateway_tokens_total", backend="cheap", direction="cached_input") == 400
    assert value(registry, "gateway_tokens_total", backend="cheap", direction="reasoning") == 200
    (line,) = log_lines(log)
    assert line["cost_usd"] == pytest.approx(CHEAP)
    assert line["baseline_cost_usd"] == pytest.approx(DEAR)
    assert (line["cached_tokens"], line["reasoning_tokens"], line["usage_estimated"]) == (400, 200, False)


async def test_stream_cost_comes_from_the_usage_chunk_the_client_never_sees(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    log = tmp_path / "decisions.jsonl"
    calls, handler = upstream()
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with gateway_client(policy(), handler, registry, Settings(decision_log=str(log))) as client:
        r = await client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200
    assert calls[0]["stream_options"] == {"include_usage": True}  # asked upstream on the client's behalf
    assert '"usage"' not in r.text  # ...and hidden from the client, who did not ask
    # Headers leave before the usage chunk arrives: a stream's cost is in metrics and the log only.
    assert "x-gateway-cost-usd" not in r.headers
    assert value(registry, "gateway_cost_usd_total", route="small", backend="cheap") == pytest.approx(CHEAP)
    assert value(registry, "gateway_usage_estimated_total", backend="cheap") == 0
    (line,) = log_lines(log)
    assert line["stream"] is True
    assert line["cost_usd"] == pytest.approx(CHEAP)
    assert line["usage_estimated"] is False


async def test_stream_without_usage_is_estimated_and_marked(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    log = tmp_path / "decisions.jsonl"
    _, handler = upstream(send_usage=False)
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with gateway_client(policy(), handler, registry, Settings(decision_log=str(log))) as client:
        r = await client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200
    assert value(registry, "gateway_usage_estimated_total", backend="cheap") == 1
    (line,) = log_lines(log)
    assert line["usage_estimated"] is True
    assert line["completion_tokens"] == 20  # 80 characters streamed, about 4 per token
    prompt_tokens = int(str(line["prompt_tokens"]))
    assert prompt_tokens > 0  # counted offline from the request
    assert line["cost_usd"] == pytest.approx((prompt_tokens * 1 + 20 * 2) / 1e6)


async def test_json_answer_without_usage_is_counted_with_the_tokenizer(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    _, handler = upstream(send_usage=False)
    async with gateway_client(policy(), handler, registry) as client:
        r = await client.post(
            "/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
        )
    assert r.status_code == 200
    assert value(registry, "gateway_usage_estimated_total", backend="cheap") == 1
    assert value(registry, "gateway_tokens_total", backend="cheap", direction="output") == 1  # "fine"
    assert float(r.headers["x-gateway-cost-usd"]) > 0
