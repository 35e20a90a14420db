"""Real processes over loopback: one simulator hosting healthy and faulty models, the gateway in
front of it, and a 'black hole' listener whose full accept queue makes connects time out."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.procs import free_port, gateway_cmd, running, simulator_cmd

# Timeouts of the faulty backends, small so that the whole matrix runs in seconds.
CONNECT_MS = 300
FIRST_BYTE_MS = 400
TOTAL_MS = 2000
MARGIN_S = 1.0  # process scheduling on a shared machine

FAST = {"ttft_ms": 5, "tokens_per_second": 0}
SIM_CONFIG = {
    "max_tokens_default": 8,
    "models": {
        "ok": FAST,
        **{m: FAST for m in ("f-500", "f-502", "f-503", "f-429", "f-slow", "f-stall", "f-reset")},
        **{m: FAST for m in ("f-reset-early", "f-json", "f-sse")},
        "slow-answer": {"ttft_ms": 30_000, "tokens_per_second": 0},
        "trickle": {"ttft_ms": 5, "tokens_per_second": 4},
        "one-per-second": {"ttft_ms": 5, "tokens_per_second": 1},
        "slow-stream": {"ttft_ms": 5, "tokens_per_second": 2.5},
    },
    "model_faults": {
        "f-500": {"kind": "status_500"},
        "f-502": {"kind": "status_502"},
        "f-503": {"kind": "status_503"},
        "f-429": {"kind": "status_429"},
        "f-slow": {"kind": "slow_first_byte", "delay_ms": 5_000},
        "f-stall": {"kind": "stall_mid_stream", "delay_ms": 5_000, "after_chunks": 2},
        "f-reset": {"kind": "reset_mid_stream", "after_chunks": 2},
        "f-reset-early": {"kind": "reset_before_response"},
        "f-json": {"kind": "malformed_json"},
        "f-sse": {"kind": "malformed_sse"},
    },
}

# backend name -> (simulator model, where it listens)
FAULTY = {
    "f500": "f-500",
    "f502": "f-502",
    "f503": "f-503",
    "f429": "f-429",
    "slow": "f-slow",
    "stall": "f-stall",
    "reset": "f-reset",
    "reset-early": "f-reset-early",
    "json": "f-json",
    "sse": "f-sse",
    "refused": "ok",
    "blackhole": "ok",
}


def policy_yaml(sim: int, dead: int, hole: int) -> str:
    timeouts = f"{{connect_ms: {CONNECT_MS}, first_byte_ms: {FIRST_BYTE_MS}, total_ms: {TOTAL_MS}}}"

    def backend(name: str, model: str, port: int, t: str = timeouts) -> str:
        return (
            f"  - {{name: {name}, path: p, base_url: 'http://127.0.0.1:{port}/v1', model: {model},"
            f" max_context_tokens: 100000, price_per_mtok_in: 1, price_per_mtok_out: 1,"
            f" pinnable: false, timeouts: {t}}}\n"
        )

    ports = {"refused": dead, "blackhole": hole}
    lines = ["name: faults", 'version: "1"', "backends:"]
    text = "\n".join(lines) + "\n"
    text += backend("ok", "ok", sim)
    for name, model in FAULTY.items():
        text += backend(name, model, ports.get(name, sim))
    slow_t = "{connect_ms: 1000, first_byte_ms: 60000, total_ms: 120000}"
    text += backend("slow-answer", "slow-answer", sim, slow_t)
    text += backend("trickle", "trickle", sim, slow_t)
    text += backend("capped", "one-per-second", sim, "{connect_ms: 300, first_byte_ms: 1500, total_ms: 1500}")
    routes = {"ok": ["ok"], "slow-answer": ["slow-answer"], "trickle": ["trickle"], "capped": ["capped"]}
    for name in FAULTY:
        routes[name] = [name]
        routes[f"{name}-fb"] = [name, "ok"]
    text += "routes:\n" + "".join(f"  {r}: {{backends: {json.dumps(b)}}}\n" for r, b in routes.items())
    text += "default_route: ok\n"
    text += f"rules:\n  long_context: null\n  override: {{allowed_routes: {json.dumps(list(routes))}}}\n"
    text += "forwarding:\n  max_attempts: 3\n  circuit_breaker: {enabled: false}\n"
    return text


@dataclass(frozen=True)
class Stack:
    gateway: str
    gateway_pid: int
    simulator: str
    sim_port: int

    def sim_stats(self) -> dict[str, object]:
        stats: dict[str, object] = httpx.get(f"{self.simulator}/__sim/stats", timeout=5).json()
        return stats

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(f"{self.gateway}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0

    def upstream_connections(self) -> int:
        """ESTABLISHED TCP connections from the gateway process to the simulator (/proc)."""
        return established_to(self.gateway_pid, self.sim_port)


def established_to(pid: int, port: int) -> int:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if fields[3] == "01" and remote_port == port and fields[9] in inodes:  # 01 = ESTABLISHED
                count += 1
    return count


@pytest.fixture(scope="session")
def black_hole() -> Iterator[int]:
    """A port whose accept queue is full: SYNs are dropped, so connects hang until they time out.

    Works offline on loopback (no non-routable address needed): listen(0) holds one connection in
    the accept queue, we never accept, and one filler connection occupies that slot.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=1)
    try:
        yield port
    finally:
        filler.close()
        listener.close()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, black_hole: int) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("faults")
    sim_config = tmp / "sim.json"
    sim_config.write_text(json.dumps(SIM_CONFIG))
    sim_port = free_port()
    with running(simulator_cmd(sim_port, "--config", str(sim_config)), f"http://127.0.0.1:{sim_port}/health"):
        policy = tmp / "policy.yaml"
        policy.write_text(policy_yaml(sim_port, free_port(), black_hole))
        port = free_port()
        with running(gateway_cmd(policy, port), f"http://127.0.0.1:{port}/readyz") as gw:
            yield Stack(f"http://127.0.0.1:{port}", gw.pid, f"http://127.0.0.1:{sim_port}", sim_port)
