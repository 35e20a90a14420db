from __future__ import annotations

import json
import time

import httpx
import pytest

from gateway.simulator import RunningSimulator, SimulatorSettings, start_simulator
from gateway.simulator.answers import Encoding
from tests.simulator.helpers import chat, configure, sse_events


async def test_chat_json_shape_and_usage(client: httpx.AsyncClient, encoding: Encoding) -> None:
    r = await client.post("/v1/chat/completions", json=chat(content="What is the capital of France?"))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["object"] == "chat.completion"
    assert doc["id"].startswith("chatcmpl-")
    assert doc["model"] == "sim-small"
    assert isinstance(doc["created"], int)
    choice = doc["choices"][0]
    assert choice["message"]["role"] == "assistant"
    text = choice["message"]["content"]
    assert "sim-small" in text and "What is the capital of France?" in text
    assert choice["finish_reason"] == "stop"
    usage = doc["usage"]
    expected_prompt = (
        3
        + 3
        + len(encoding.encode_ordinary("Be brief."))
        + 3
        + len(encoding.encode_ordinary("What is the capital of France?"))
    )
    assert usage["prompt_tokens"] == expected_prompt
    assert usage["completion_tokens"] == 24 == len(encoding.encode_ordinary(text))
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_max_tokens_cuts_the_answer(client: httpx.AsyncClient) -> None:
    for key in ("max_tokens", "max_completion_tokens"):
        doc = (await client.post("/v1/chat/completions", json=chat(**{key: 5}))).json()
        assert doc["usage"]["completion_tokens"] == 5
        assert doc["choices"][0]["finish_reason"] == "length"


async def test_unknown_model_is_echoed_with_a_generic_profile(client: httpx.AsyncClient) -> None:
    doc = (await client.post("/v1/chat/completions", json=chat(model="my-own-model"))).json()
    assert doc["model"] == "my-own-model"
    assert "my-own-model (simulated generic model)" in doc["choices"][0]["message"]["content"]


async def test_answers_are_deterministic(client: httpx.AsyncClient) -> None:
    a = (await client.post("/v1/chat/completions", json=chat())).json()
    b = (await client.post("/v1/chat/completions", json=chat())).json()
    assert a["choices"][0]["message"]["content"] == b["choices"][0]["message"]["content"]
    assert a["id"] != b["id"]


@pytest.mark.parametrize("include_usage", [True, False])
async def test_sse_sequence(client: httpx.AsyncClient, include_usage: bool) -> None:
    body = chat(stream=True, max_tokens=6)
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    r = await client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "sim-small" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    content = [c for c in chunks if c["choices"] and "content" in c["choices"][0]["delta"]][1:]
    assert len(content) == 6
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finish) == 1 and finish[0]["choices"][0]["finish_reason"] == "length"
    usage_chunks = [c for c in chunks if c.get("usage")]
    if include_usage:
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 6
        assert usage_chunks == [chunks[-1]]
        assert all("usage" in c for c in chunks)  # null on every other chunk, as OpenAI sends it
    else:
        assert usage_chunks == []
        assert all("usage" not in c for c in chunks)


async def test_legacy_completions_json_and_stream(client: httpx.AsyncClient) -> None:
    doc = (
        await client.post("/v1/completions", json={"model": "sim-rag", "prompt": "Say hi", "max_tokens": 4})
    ).json()
    assert doc["object"] == "text_completion" and doc["usage"]["completion_tokens"] == 4
    assert doc["choices"][0]["text"]
    r = await client.post(
        "/v1/completions", json={"model": "sim-rag", "prompt": "Say hi", "stream": True, "max_tokens": 3}
    )
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    assert [json.loads(e)["object"] for e in events[:-1]] == ["text_completion"] * 4


async def test_models_health_and_errors(client: httpx.AsyncClient) -> None:
    ids = [m["id"] for m in (await client.get("/v1/models")).json()["data"]]
    assert ids == ["sim-small", "sim-rag", "sim-long", "sim-frontier"]
    assert (await client.get("/health")).json() == {"status": "ok"}
    bad = await client.post("/v1/chat/completions", content=b"{nope")
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    missing = await client.post("/v1/chat/completions", json={"model": "sim-small"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"
    assert (await client.get("/nowhere")).status_code == 404
    assert (await client.get("/v1/chat/completions")).status_code == 405


async def test_context_limit(client: httpx.AsyncClient) -> None:
    await configure(client, models={"sim-small": {"context_tokens": 50}})
    r = await client.post("/v1/chat/completions", json=chat(content="word " * 200))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"
    assert (
        await client.post("/v1/chat/completions", json=chat(model="sim-long", content="word " * 200))
    ).status_code == 200


async def test_keep_alive_and_pipelining(sim: RunningSimulator) -> None:
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    body = json.dumps(chat(max_tokens=3)).encode()
    request = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    writer.write(request * 3 + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert data.count(b"HTTP/1.1 200 OK") == 4
    assert data.endswith(b'{"status":"ok"}')


async def test_profile_and_override_timing(encoding: Encoding) -> None:
    settings = SimulatorSettings(max_tokens_default=5)  # profiles as shipped
    sim = await start_simulator(settings, port=0, encoding=encoding)
    try:
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            t0 = time.perf_counter()
            await c.post("/v1/chat/completions", json=chat(model="sim-long"))
            slow = time.perf_counter() - t0
            await configure(c, ttft_ms=0, tokens_per_second=0)
            t0 = time.perf_counter()
            await c.post("/v1/chat/completions", json=chat(model="sim-long"))
            fast = time.perf_counter() - t0
    finally:
        await sim.stop()
    assert slow >= 0.15 + 4 / 80 - 0.01  # ttft 150 ms, then 4 tokens at 80 tok/s
    assert fast < 0.1


async def test_stream_is_paced(client: httpx.AsyncClient) -> None:
    await configure(client, ttft_ms=50, tokens_per_second=100)
    t0 = time.perf_counter()
    arrivals = []
    async with client.stream("POST", "/v1/chat/completions", json=chat(stream=True, max_tokens=6)) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                arrivals.append(time.perf_counter() - t0)
    assert arrivals[0] >= 0.045
    assert arrivals[-1] - arrivals[0] >= 5 / 100 - 0.01
