from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.procs import free_port, gateway_cmd, running, simulator_cmd

RULES_POLICY = """
name: e2e
version: "1"
backends:
  - {{name: small-sim, path: small, base_url: "http://127.0.0.1:{sim}/v1", model: sim-small,
     max_context_tokens: 16000, price_per_mtok_in: 0.1, price_per_mtok_out: 0.4}}
  - {{name: broken, path: frontier, base_url: "http://127.0.0.1:{sim}/v1", model: sim-broken,
     max_context_tokens: 100000, price_per_mtok_in: 3, price_per_mtok_out: 15}}
  - {{name: refused, path: frontier, base_url: "http://127.0.0.1:{dead}/v1", model: sim-frontier,
     max_context_tokens: 100000, price_per_mtok_in: 3, price_per_mtok_out: 15,
     timeouts: {{connect_ms: 500}}}}
  - {{name: frontier-sim, path: frontier, base_url: "http://127.0.0.1:{sim}/v1", model: sim-frontier,
     max_context_tokens: 100000, price_per_mtok_in: 3, price_per_mtok_out: 15}}
routes:
  small: {{backends: [small-sim]}}
  frontier: {{backends: [broken, refused, frontier-sim]}}
  long_context: {{backends: [frontier-sim]}}
default_route: frontier
baseline_backend: frontier-sim
rules:
  override: {{allowed_routes: [small, frontier]}}
  long_context: {{threshold_tokens: 5000}}
"""


@pytest.fixture(scope="session")
def simulator() -> Iterator[int]:
    port = free_port()
    cmd = simulator_cmd(
        port, "--ttft-ms", "5", "--tokens-per-second", "2000", "--model-fault", "sim-broken=status_503"
    )
    with running(cmd, f"http://127.0.0.1:{port}/health"):
        yield port


@pytest.fixture(scope="session")
def rules_gateway(simulator: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    policy = tmp_path_factory.mktemp("policy") / "rules.yaml"
    policy.write_text(RULES_POLICY.format(sim=simulator, dead=free_port()))
    port = free_port()
    with running(gateway_cmd(policy, port), f"http://127.0.0.1:{port}/readyz"):
        yield f"http://127.0.0.1:{port}"


def write_policy(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
