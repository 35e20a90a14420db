from __future__ import annotations

import pytest

from gateway.simulator import RunningSimulator
from loadtest.loadgen import (
    LoadgenError,
    LoadSpec,
    check_body,
    loopback_target,
    percentile,
    run_load,
    summarize,
)


def test_percentiles_use_nearest_rank() -> None:
    xs = [float(i) for i in range(1, 101)]
    assert percentile(xs, 50) == 50.0
    assert percentile(xs, 99) == 99.0
    assert percentile(xs, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) == 0.0
    s = summarize([3.0, 1.0, 2.0, 4.0])
    assert (s["min"], s["p50"], s["max"], s["mean"]) == (1.0, 2.0, 4.0, 2.5)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.5.6.7/v1",
        "http://localhost:1/v1/",
        "http://[::1]:9100/v1/chat/completions",
    ],
)
def test_loopback_targets_are_accepted(url: str) -> None:
    target = loopback_target(url)
    assert target.path.endswith("/completions")


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:8080",
        "http://example.com/v1",
        "http://0.0.0.0:80",
        "https://127.0.0.1",
        "http://128.0.0.1",
    ],
)
def test_other_targets_are_refused(url: str) -> None:
    with pytest.raises(LoadgenError):
        loopback_target(url)


def test_body_checks() -> None:
    assert check_body(b'{"choices":[{}],"usage":{"total_tokens":1}}', stream=False, include_usage=True)
    assert not check_body(b'{"choices":[{}]}', stream=False, include_usage=True)
    assert not check_body(b"{broken", stream=False, include_usage=True)
    assert check_body(b'data: {"usage":{"a":1}}\n\ndata: [DONE]\n\n', stream=True, include_usage=True)
    assert not check_body(b'data: {"usage":{"a":1}}\n\n', stream=True, include_usage=True)
    assert not check_body(b"data: {}\n\ndata: [DONE]\n\n", stream=True, include_usage=True)


@pytest.mark.parametrize("stream", [False, True])
async def test_short_run_against_the_simulator(sim: RunningSimulator, stream: bool) -> None:
    spec = LoadSpec(
        url=sim.base_url, concurrency=4, duration_s=0.3, warmup_s=0.1, stream=stream, model="sim-small"
    )
    result = await run_load(spec)
    assert result["requests"] > 50
    assert result["errors"] == {"connect": 0, "timeout": 0, "status": 0, "bad_body": 0, "disconnect": 0}
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]
    if stream:
        assert 0 < result["ttft_ms"]["p50"] <= result["latency_ms"]["p99"]
    stats = sim.app.stats.to_json()
    assert stats["requests_by_model"]["sim-small"] >= result["requests"]


async def test_errors_are_counted_by_kind(sim: RunningSimulator) -> None:
    sim.app.configure(
        {"faults": [{"kind": "status_503", "rate": 0.5}, {"kind": "malformed_json", "rate": 0.5}]}
    )
    result = await run_load(LoadSpec(url=sim.base_url, concurrency=2, duration_s=0.2, warmup_s=0, model="m"))
    assert result["requests"] == 0
    assert result["errors"]["status"] > 0 and result["errors"]["bad_body"] > 0


async def test_max_requests_bound(sim: RunningSimulator) -> None:
    result = await run_load(
        LoadSpec(url=sim.base_url, concurrency=2, duration_s=5, warmup_s=0, max_requests=10)
    )
    assert result["sent"] == 10 and result["count_bound_hit"]
