"""Real processes on loopback for end-to-end tests: the simulator and the gateway."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60.0, status: int = 200) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered:\n{out[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == status:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer {status} within {timeout_s} s")


@contextlib.contextmanager
def running(
    args: Sequence[str], ready_url: str, *, env: dict[str, str] | None = None, timeout_s: float = 60.0
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        list(args),
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_http(ready_url, proc, timeout_s)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    if proc.stdout:
        proc.stdout.close()


def simulator_cmd(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "gateway.simulator", "--host", "127.0.0.1", "--port", str(port), *extra]


def gateway_cmd(policy: Path, port: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "gateway.cli", "serve", "--policy", str(policy),
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *extra,
    ]  # fmt: skip
