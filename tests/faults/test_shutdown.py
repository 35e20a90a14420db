"""Graceful shutdown of a real gateway process: drain (readiness 503), close, finish streams, exit 0."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.procs import free_port, gateway_cmd, running
from tests.faults.conftest import Stack

pytestmark = pytest.mark.e2e

DRAIN_S = 1.0

POLICY = """
name: shutdown
version: "1"
backends:
  - {{name: slow, path: p, base_url: "http://127.0.0.1:{sim}/v1", model: slow-stream,
     max_context_tokens: 100000, price_per_mtok_in: 1, price_per_mtok_out: 1}}
routes:
  p: {{backends: [slow]}}
default_route: p
rules: {{long_context: null}}
"""


def test_sigterm_drains_then_finishes_streams_and_exits_zero(stack: Stack, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(sim=stack.sim_port))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = gateway_cmd(policy, port, "--drain-s", str(DRAIN_S), "--shutdown-grace-s", "10")
    with running(cmd, f"{base}/readyz") as proc:
        lines: list[str] = []
        first = threading.Event()

        def consume() -> None:
            body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "stream": True}
            with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=20) as r:
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        lines.append(line[6:])
                        first.set()

        reader = threading.Thread(target=consume)
        reader.start()
        assert first.wait(10)
        signalled = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)

        time.sleep(0.2)  # the signal handler runs between two event-loop steps
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 503
        assert ready.json()["draining"] is True
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200  # still serving

        time.sleep(max(DRAIN_S + 0.4 - (time.monotonic() - signalled), 0))
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/healthz", timeout=2)
        assert proc.poll() is None, "the process left before its stream finished"

        reader.join(timeout=15)
        assert lines[-1] == "[DONE]", lines[-3:]
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - signalled < DRAIN_S + 10
