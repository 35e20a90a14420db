"""`gateway serve --workers 2`: every scrape, whichever worker answers it, sums both workers."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.procs import free_port, gateway_cmd, running, simulator_cmd

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

POLICY = """
name: multiworker
version: "1"
backends:
  - {{name: small-sim, path: small, base_url: "http://127.0.0.1:{sim}/v1", model: sim-small,
     max_context_tokens: 16000, price_per_mtok_in: 0.1, price_per_mtok_out: 0.4}}
  - {{name: frontier-sim, path: frontier, base_url: "http://127.0.0.1:{sim}/v1", model: sim-frontier,
     max_context_tokens: 100000, price_per_mtok_in: 3, price_per_mtok_out: 15}}
routes:
  small: {{backends: [small-sim]}}
  frontier: {{backends: [frontier-sim]}}
  long_context: {{backends: [frontier-sim]}}
default_route: frontier
baseline_backend: frontier-sim
rules:
  override: {{allowed_routes: [small, frontier]}}
"""
N = 40


def scrape(url: str) -> dict[str, float]:
    """Sample name -> sum over its label sets."""
    text = httpx.get(f"{url}/metrics", timeout=5, headers={"connection": "close"}).text
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    sim = free_port()
    with running(
        simulator_cmd(sim, "--ttft-ms", "1", "--tokens-per-second", "0"), f"http://127.0.0.1:{sim}/health"
    ):
        policy = tmp_path / "policy.yaml"
        policy.write_text(POLICY.format(sim=sim))
        port = free_port()
        tmpdir = tmp_path / "tmp"
        tmpdir.mkdir()
        log = tmp_path / "logs" / "decisions.jsonl"
        cmd = gateway_cmd(policy, port, "--workers", "2", "--no-classifier", "--decision-log", str(log))
        url = f"http://127.0.0.1:{port}"
        with running(cmd, f"{url}/readyz", env={"TMPDIR": str(tmpdir)}, timeout_s=90):
            ready_in_a_row = 0
            deadline = time.monotonic() + 60
            while ready_in_a_row < 20 and time.monotonic() < deadline:  # both workers loaded
                ok = httpx.get(f"{url}/readyz", headers={"connection": "close"}).status_code == 200
                ready_in_a_row = ready_in_a_row + 1 if ok else 0
            yield url, tmpdir, log
        assert not list(tmpdir.glob("gateway-metrics-*")), "the metrics directory outlived the server"


def test_scrapes_sum_over_workers(two_workers: tuple[str, Path, Path]) -> None:
    url, tmpdir, log = two_workers
    (metrics_dir,) = tmpdir.glob("gateway-metrics-*")
    for i in range(N):
        r = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "auto", "messages": [{"role": "user", "content": f"hello {i}"}], "max_tokens": 5},
            headers={"connection": "close", "x-gateway-route": "small" if i % 2 else "frontier"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
    for _ in range(12):
        totals = scrape(url)
        assert totals["gateway_requests_total"] == N
        assert totals["gateway_decisions_total"] == N
        assert totals["gateway_request_duration_seconds_count"] == N
        assert totals["gateway_in_flight_requests"] == 0
        assert totals["gateway_policy_info"] == 1  # max over workers, not a sum
    pids = {int(m.group(1)) for p in metrics_dir.iterdir() if (m := re.search(r"_(\d+)\.db$", p.name))}
    assert len(pids) == 2, "both workers write metrics files"
    # Decision lines are buffered and flushed at least once a second.
    deadline = time.monotonic() + 5
    while True:
        files = sorted(log.parent.glob("decisions.*.jsonl"))
        lines = sum(len(f.read_text().splitlines()) for f in files)
        if lines >= N or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert files and all(re.fullmatch(r"decisions\.\d+\.jsonl", f.name) for f in files)
    assert lines == N
    assert os.path.isdir(metrics_dir)
