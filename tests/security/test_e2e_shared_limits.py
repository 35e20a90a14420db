"""Two real gateway processes sharing one real Redis: a key's limit holds across both."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.auth import hash_key
from tests.e2e.procs import free_port, gateway_cmd, running, simulator_cmd
from tests.security.conftest import RedisServer, bearer, chat

pytestmark = pytest.mark.e2e

KEY = "gk-e2e-0123456789abcdefghijklmnopqrstuvw"
POLICY = """
name: shared-limits
version: "1"
backends:
  - {{name: small-sim, path: small, base_url: "http://127.0.0.1:{sim}/v1", model: sim-small,
     max_context_tokens: 16000, price_per_mtok_in: 0.1, price_per_mtok_out: 0.4}}
routes:
  small: {{backends: [small-sim]}}
default_route: small
rules: {{long_context: null}}
"""
KEYS = f"""
keys:
  - id: team-e2e
    sha256: {hash_key(KEY)}
    limits: {{requests_per_min: 10}}
"""


@pytest.fixture(scope="module")
def two_gateways(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    folder = tmp_path_factory.mktemp("shared")
    sim = free_port()
    policy, keys = folder / "policy.yaml", folder / "keys.yaml"
    policy.write_text(POLICY.format(sim=sim))
    keys.write_text(KEYS)
    ports = [free_port(), free_port()]
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            running(simulator_cmd(sim, "--ttft-ms", "1", "--tokens-per-second", "5000"),
                    f"http://127.0.0.1:{sim}/health")
        )  # fmt: skip
        for port in ports:
            cmd = gateway_cmd(Path(policy), port, "--keys", str(keys), "--no-classifier")
            env = {"GATEWAY_REDIS_URL": redis_server.url, "GATEWAY_LIMITER_FAIL_MODE": "closed"}
            stack.enter_context(running(cmd, f"http://127.0.0.1:{port}/readyz", env=env))
        yield [f"http://127.0.0.1:{port}" for port in ports]


def wait_clear_of_a_minute_boundary(server: RedisServer, margin_s: float = 5.0) -> None:
    """Fixed windows: 15 requests straddling a minute boundary would meet two windows."""
    seconds, micros = server.client().time()
    into = (seconds % 60) + micros / 1e6
    if into > 60 - margin_s:
        time.sleep(60 - into + 0.2)


def test_a_limit_holds_across_two_gateway_processes(
    two_gateways: list[str], redis_server: RedisServer
) -> None:
    redis_server.client().flushall()
    wait_clear_of_a_minute_boundary(redis_server)
    statuses: list[int] = []
    with httpx.Client(timeout=10) as client:
        for i in range(15):
            r = client.post(
                f"{two_gateways[i % 2]}/v1/chat/completions", json=chat("hi"), headers=bearer(KEY)
            )
            statuses.append(r.status_code)
            if r.status_code == 429:
                assert r.json()["error"]["type"] == "rate_limit_error"
                assert 1 <= int(r.headers["retry-after"]) <= 60
        assert statuses.count(200) == 10, statuses
        assert statuses.count(429) == 5, statuses
        # both processes served and both refused: the count is shared, not per process
        assert set(statuses[0:10:2]) | set(statuses[1:10:2]) == {200}
        metrics = [client.get(f"{base}/metrics").text for base in two_gateways]
    limited = [
        float(line.rsplit(" ", 1)[1])
        for text in metrics
        for line in text.splitlines()
        if line.startswith('gateway_rate_limited_total{limit="requests"}')
    ]
    assert sum(limited) == 5
    for text in metrics:
        assert KEY not in text and hash_key(KEY) not in text


def test_without_a_key_both_refuse(two_gateways: list[str]) -> None:
    for base in two_gateways:
        r = httpx.post(f"{base}/v1/chat/completions", json=chat("hi"), timeout=10)
        assert r.status_code == 401
        assert r.json()["error"]["type"] == "authentication_error"
