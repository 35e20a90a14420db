from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from gateway.simulator import RunningSimulator
from gateway.simulator.faults import SimulatorConfigError, choose_fault, fault_from_arg, faults_from_json
from tests.simulator.helpers import chat, configure, sse_events


async def stats(client: httpx.AsyncClient) -> dict[str, object]:
    result: dict[str, object] = (await client.get("/__sim/stats")).json()
    return result


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_status_faults_use_the_openai_error_shape(client: httpx.AsyncClient, status: int) -> None:
    await configure(client, faults={"kind": f"status_{status}", "rate": 1})
    r = await client.post("/v1/chat/completions", json=chat())
    assert r.status_code == status
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    if status == 429:
        assert r.headers["retry-after"] == "1"
    assert (await stats(client))["faults_injected"] == {f"status_{status}": 1}


async def test_per_model_faults_leave_other_models_healthy(client: httpx.AsyncClient) -> None:
    await configure(client, model_faults={"sim-frontier": {"kind": "status_503"}})
    assert (await client.post("/v1/chat/completions", json=chat(model="sim-frontier"))).status_code == 503
    assert (await client.post("/v1/chat/completions", json=chat(model="sim-small"))).status_code == 200


async def test_rate_is_a_probability(client: httpx.AsyncClient) -> None:
    await configure(client, seed=7, faults=[{"kind": "status_500", "rate": 0.5}])
    codes = [(await client.post("/v1/chat/completions", json=chat())).status_code for _ in range(60)]
    assert 15 < codes.count(500) < 45
    assert codes.count(200) == 60 - codes.count(500)


async def test_slow_first_byte(client: httpx.AsyncClient) -> None:
    await configure(client, faults={"kind": "slow_first_byte", "delay_ms": 200})
    t0 = time.perf_counter()
    r = await client.post("/v1/chat/completions", json=chat())
    assert r.status_code == 200 and time.perf_counter() - t0 >= 0.19


async def test_stall_mid_stream(client: httpx.AsyncClient) -> None:
    await configure(client, faults={"kind": "stall_mid_stream", "delay_ms": 300, "after_chunks": 2})
    t0 = time.perf_counter()
    arrivals: list[float] = []
    async with client.stream("POST", "/v1/chat/completions", json=chat(stream=True, max_tokens=5)) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                arrivals.append(time.perf_counter() - t0)
    assert len(arrivals) == 8  # role, 5 tokens, finish, [DONE]
    assert arrivals[1] < 0.2 and arrivals[2] >= 0.29


async def test_reset_mid_stream(client: httpx.AsyncClient) -> None:
    await configure(client, faults={"kind": "reset_mid_stream", "after_chunks": 3})
    received: list[str] = []
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        async with client.stream("POST", "/v1/chat/completions", json=chat(stream=True)) as r:
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    received.append(line)
    assert len(received) == 3
    s = await stats(client)
    assert s["aborted"] == 1 and s["client_disconnects"] == 0 and s["in_flight"] == 0


async def test_reset_mid_json_body(client: httpx.AsyncClient) -> None:
    await configure(client, faults={"kind": "reset_mid_stream"})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await client.post("/v1/chat/completions", json=chat())


async def test_reset_before_response(client: httpx.AsyncClient) -> None:
    await configure(client, faults={"kind": "reset_before_response"})
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post("/v1/chat/completions", json=chat())


async def test_malformed_json(client: httpx.AsyncClient) -> None:
    await configure(client, faults={"kind": "malformed_json"})
    r = await client.post("/v1/chat/completions", json=chat())
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.text)


async def test_malformed_sse(client: httpx.AsyncClient) -> None:
    await configure(client, faults={"kind": "malformed_sse"})
    r = await client.post("/v1/chat/completions", json=chat(stream=True))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.content.decode("utf-8", errors="replace"))
    assert "[DONE]" not in events
    assert "this line is not an SSE field" in r.text
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[1])


async def test_faults_spare_control_and_model_listing(client: httpx.AsyncClient) -> None:
    await configure(client, faults={"kind": "status_500"})
    assert (await client.get("/v1/models")).status_code == 200
    assert (await client.get("/health")).status_code == 200


async def test_stats_count_a_client_disconnect(client: httpx.AsyncClient, sim: RunningSimulator) -> None:
    await configure(client, ttft_ms=0, tokens_per_second=20)
    body = chat(model="sim-rag", stream=True)
    async with (
        httpx.AsyncClient(base_url=sim.base_url) as other,
        other.stream("POST", "/v1/chat/completions", json=body) as r,
    ):
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                break
        s = await stats(client)
        assert s["in_flight"] == 1 and s["in_flight_by_model"] == {"sim-rag": 1}
    for _ in range(100):
        s = await stats(client)
        if s["client_disconnects"] == 1:
            break
        await asyncio.sleep(0.01)
    assert s["client_disconnects"] == 1
    assert s["in_flight"] == 0 and s["completed"] == 0
    assert s["requests_by_model"] == {"sim-rag": 1}
    await client.post("/__sim/reset")
    s = await stats(client)
    assert s["client_disconnects"] == 0 and s["requests_by_model"] == {}


async def test_open_connections_gauge(client: httpx.AsyncClient, sim: RunningSimulator) -> None:
    before = (await stats(client))["open_connections"]
    _reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    await asyncio.sleep(0.02)
    assert (await stats(client))["open_connections"] == before + 1  # type: ignore[operator]
    writer.close()
    await writer.wait_closed()


async def test_bad_config_is_refused_with_a_clear_message(client: httpx.AsyncClient) -> None:
    r = await client.post("/__sim/config", json={"faults": {"kind": "explode"}})
    assert r.status_code == 400 and "unknown fault kind 'explode'" in r.json()["error"]["message"]
    r = await client.post(
        "/__sim/config",
        json={"faults": [{"kind": "status_500", "rate": 0.7}, {"kind": "status_503", "rate": 0.7}]},
    )
    assert r.status_code == 400 and "add up to 1.4" in r.json()["error"]["message"]
    r = await client.post("/__sim/config", json={"colour": "blue"})
    assert r.status_code == 400


def test_fault_parsing_and_choice() -> None:
    f = fault_from_arg("stall_mid_stream:0.25:delay_ms=1500:after_chunks=2")
    assert (f.kind.value, f.rate, f.delay_ms, f.after_chunks) == ("stall_mid_stream", 0.25, 1500.0, 2)
    assert fault_from_arg("slow_first_byte").delay_ms == 2000.0
    with pytest.raises(SimulatorConfigError):
        fault_from_arg("status_500:often")
    faults = faults_from_json([{"kind": "status_500", "rate": 0.2}, {"kind": "status_503", "rate": 0.3}])
    assert choose_fault(faults, 0.1) == faults[0]
    assert choose_fault(faults, 0.3) == faults[1]
    assert choose_fault(faults, 0.6) is None
