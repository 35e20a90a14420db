"""A real scrape: every PromQL expression the project ships returns data from a real Prometheus.

Starts the upstream simulator, the gateway (real MiniLM classifier) and a Prometheus server on
loopback scraping the gateway every second with the rule files from deploy/prometheus, runs a
short mixed load, then sends every probe from tests/ops/promql.py to Prometheus's HTTP API.

The load is shaped so that every series exists: classified requests (confidence, stages,
classifier info), JSON and streamed answers with and without usage, pinned and overridden routes,
a long prompt (context_length), 4xx and 5xx errors, fallbacks past a 503 and past a refused
connection, and a backend that always refuses, whose circuit opens (gateway_circuit_state).

The rule files are loaded as shipped except for their per-group ``interval``, dropped so the
global ``evaluation_interval: 1s`` applies: with the shipped 15-60 s intervals a one-minute test
could end before a group's first evaluation.

    .venv/bin/pytest tests/ops/test_scrape.py -q         # about 1-2 minutes
    SCRAPE_LOAD_S=60 .venv/bin/pytest tests/ops/test_scrape.py -q
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.procs import REPO, free_port, gateway_cmd, running, simulator_cmd
from tests.ops.promql import RULES_GLOB, all_expressions

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

LOAD_S = float(os.environ.get("SCRAPE_LOAD_S", "40"))
ARTEFACT = REPO / "policies" / "artefacts" / "default-minilm"

# Probes that may return nothing after this load, with the reason. Keep it empty when possible.
EXPECTED_EMPTY: dict[str, str] = {}

POLICY = """
name: scrape-test
version: "1"
virtual_models: [auto]
backends:
  - {{name: small-ft, path: small, base_url: "http://127.0.0.1:{sim}/v1", model: sim-small,
     max_context_tokens: 16384, price_per_mtok_in: 0.1, price_per_mtok_out: 0.4}}
  - {{name: refused, path: rag, base_url: "http://127.0.0.1:{dead}/v1", model: sim-refused,
     max_context_tokens: 32768, price_per_mtok_in: 0.4, price_per_mtok_out: 1.6,
     timeouts: {{connect_ms: 300}}}}
  - {{name: rag-mid, path: rag, base_url: "http://127.0.0.1:{sim}/v1", model: sim-rag,
     max_context_tokens: 32768, price_per_mtok_in: 0.4, price_per_mtok_out: 1.6}}
  - {{name: long-ctx, path: long_context, base_url: "http://127.0.0.1:{sim}/v1", model: sim-long,
     max_context_tokens: 1000000, price_per_mtok_in: 1.25, price_per_mtok_out: 5}}
  - {{name: flaky, path: frontier, base_url: "http://127.0.0.1:{sim}/v1", model: sim-broken,
     max_context_tokens: 200000, price_per_mtok_in: 3, price_per_mtok_out: 15}}
  - {{name: frontier, path: frontier, base_url: "http://127.0.0.1:{sim}/v1", model: sim-frontier,
     max_context_tokens: 200000, price_per_mtok_in: 3, price_per_mtok_out: 15}}
routes:
  small: {{backends: [small-ft, frontier]}}
  rag: {{backends: [refused, rag-mid]}}
  long_context: {{backends: [long-ctx]}}
  frontier: {{backends: [flaky, frontier]}}
default_route: frontier
baseline_backend: frontier
rules:
  override: {{allowed_routes: [small, rag, long_context, frontier]}}
  long_context: {{threshold_tokens: 1500}}
classifier:
  encoder: minilm
  artefact: {artefact}
  confidence_threshold: 0.5
  when_unsure: frontier
"""

PROMPTS = (
    'Categorise this ticket as Login, Payments, Delivery or Other: "Courier left my parcel at the wrong house."',
    "What does our travel policy say about booking business class for flights over six hours?",
    "Design a rate limiter for a multi-region API and discuss the trade-offs of each approach.",
    "Extract the invoice number and the total from: Invoice INV-2231, total 420.00 EUR.",
    "hmm",
)


def chat(text: str, **extra: object) -> dict[str, object]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], "max_tokens": 24, **extra}


async def one(client: httpx.AsyncClient, i: int) -> None:
    prompt = PROMPTS[i % len(PROMPTS)]
    kind = i % 12
    url = "/v1/chat/completions"
    if kind in (0, 1, 2):
        await client.post(url, json=chat(prompt))  # classified
    elif kind == 3:
        async with client.stream("POST", url, json=chat(prompt, stream=True)) as r:
            await r.aread()
    elif kind == 4:
        body = chat(prompt, stream=True, stream_options={"include_usage": True})
        async with client.stream("POST", url, json=body) as r:
            await r.aread()
    elif kind == 5:
        await client.post(url, json=chat(prompt), headers={"x-gateway-route": "rag"})  # refused -> rag-mid
    elif kind == 6:
        await client.post(url, json=chat(prompt), headers={"x-gateway-route": "frontier"})  # 503 -> frontier
    elif kind == 7:
        await client.post(url, content=b"{not json", headers={"content-type": "application/json"})  # 400
    elif kind == 8:
        await client.post(url, json={**chat(prompt), "model": "no-such-model"})  # 404
    elif kind == 9:
        await client.post("/v1/completions", json={"model": "auto", "prompt": prompt, "max_tokens": 16})
    elif kind == 10:
        await client.post(url, json=chat("lorem ipsum dolor " * 700))  # context_length
    else:
        await client.post(url, json={**chat(prompt), "model": "sim-broken"})  # pinned, fails: 5xx


async def load(base: str, seconds: float, concurrency: int = 4) -> int:
    counter = itertools.count()
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def worker() -> int:
            done = 0
            while time.monotonic() < deadline:
                await one(client, next(counter))
                done += 1
            return done

        return sum(await asyncio.gather(*(worker() for _ in range(concurrency))))


def instant(prom: str, query: str) -> list[object]:
    r = httpx.get(f"{prom}/api/v1/query", params={"query": query}, timeout=10)
    body = r.json()
    assert body.get("status") == "success", f"{query}: {body.get('error', body)}"
    result: list[object] = body["data"]["result"]
    return result


@pytest.fixture(scope="module")
def prometheus_bin() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.skip("prometheus not found: apt-get install -y prometheus (CI installs it)")
    return found


def copy_rules(dest: Path) -> list[Path]:
    out = []
    for path in sorted(REPO.glob(RULES_GLOB)):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in data.get("groups", []):
            group.pop("interval", None)
        target = dest / path.name
        target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        out.append(target)
    return out


@pytest.fixture(scope="module")
def stack(prometheus_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("scrape")
    sim = free_port()
    sim_cmd = simulator_cmd(
        sim, "--ttft-ms", "5", "--tokens-per-second", "2000", "--model-fault", "sim-broken=status_503"
    )
    with running(sim_cmd, f"http://127.0.0.1:{sim}/health"):
        policy = tmp / "policy.yaml"
        policy.write_text(POLICY.format(sim=sim, dead=free_port(), artefact=ARTEFACT))
        port = free_port()
        gateway = f"http://127.0.0.1:{port}"
        with running(gateway_cmd(policy, port), f"{gateway}/readyz", timeout_s=240):
            rules = copy_rules(tmp)
            config = {
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(p) for p in rules],
                "scrape_configs": [
                    {"job_name": "llm-gateway", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                ],
            }
            (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
            prom_port = free_port()
            prom = f"http://127.0.0.1:{prom_port}"
            prom_cmd = [
                prometheus_bin,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--log.level=warn",
            ]
            with running(prom_cmd, f"{prom}/-/ready", timeout_s=60):
                yield gateway, prom


def test_every_shipped_expression_returns_data(stack: tuple[str, str]) -> None:
    gateway, prom = stack
    sent = asyncio.run(load(gateway, LOAD_S))
    assert sent > 50, f"only {sent} requests in {LOAD_S} s"
    time.sleep(3)  # a last scrape and rule evaluation after the load
    probes = {(e.where, probe) for e in all_expressions(REPO, rate_interval="1m") for probe in e.probes}
    assert len(probes) > 50
    missing: list[str] = []
    deadline = time.monotonic() + 20
    pending = sorted(probes)
    while pending:
        pending = [(where, q) for where, q in pending if q not in EXPECTED_EMPTY and not instant(prom, q)]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(1)
    missing = [f"{where}: {q}" for where, q in pending]
    assert not missing, f"{len(missing)} of {len(probes)} probes returned no data:\n" + "\n".join(missing)
    for query, reason in EXPECTED_EMPTY.items():
        assert not instant(prom, query), f"{query} now returns data; drop it from EXPECTED_EMPTY ({reason})"
    # The failing backend's circuit opened.
    states = instant(prom, 'max by (backend) (gateway_circuit_state{job="llm-gateway"})')
    assert any(s["metric"].get("backend") == "refused" for s in states)  # type: ignore[index]
