from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gateway.simulator import main

ROOT = Path(__file__).resolve().parents[2]


def test_bad_flags_give_a_message_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--fault", "status_999"]) == 2
    err = capsys.readouterr().err
    assert "unknown fault kind 'status_999'" in err and "Traceback" not in err
    assert main(["--model-fault", "status_500"]) == 2
    assert main(["--config", "/nonexistent/sim.json"]) == 2


@pytest.mark.e2e
def test_runs_as_a_process_on_a_free_port() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.simulator",
            "--port",
            "0",
            "--ttft-ms",
            "0",
            "--tokens-per-second",
            "0",
            "--model-fault",
            "sim-frontier=status_503",
            "--lifetime-s",
            "30",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("simulator listening on http://127.0.0.1:")
        base = line.split()[-1]
        body = {"model": "sim-small", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(f"{base}/v1/chat/completions", json=body).status_code == 200
        body["model"] = "sim-frontier"
        assert httpx.post(f"{base}/v1/chat/completions", json=body).status_code == 503
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        if proc.stdout is not None:
            proc.stdout.close()
