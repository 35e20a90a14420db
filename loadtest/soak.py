#!/usr/bin/env python3
"""Soak test: minutes of mixed load through a real gateway in front of a faulty simulator.

Starts the upstream simulator (answers paced like a small model, `--fault-rate` of completions
failing: status 500, status 503, a connection reset mid-answer, or a first byte later than the
policy's first-byte timeout) and one gateway process (`--workers 1`, rules-only policy written to
the output folder, every route with a fallback backend). Then `--concurrency` keep-alive clients
send a deterministic mix of JSON and streaming chat completions (model `auto`, route override
headers, and a pinned model that has no fallback) for `--warmup` + `--duration` seconds, while
the gateway's RSS (/proc/PID/status VmRSS), open file descriptors (/proc/PID/fd) and CPU time are
sampled every `--sample-every` seconds.

Every request must end in one of:
  ok            200 with a JSON completion, or a stream ending in `data: [DONE]`
  error:S:CODE  an HTTP error S with an OpenAI-shaped body (`{"error": {message, type, param, code}}`)
  stream_error  a 200 stream whose last event is an OpenAI-shaped error (the upstream failed after
                the first chunk, so the status line was already sent)
Anything else is `unclean:*` (a body that is neither), and a request without an answer is
`lost:*` (timeout, connection closed by the gateway, connect failure). Targets: zero lost, zero
unclean, RSS growth < 10 % (mean of the last window vs the first window after warm-up), no fd
growth (mean fds of the last window <= max of the first).

Loopback only. Results: loadtest/out/soak-<time>/ (results.json, samples.csv, logs, policy).

    .venv/bin/python -m loadtest.soak --duration 300          # the full soak, about 6 minutes
    .venv/bin/python -m loadtest.soak --duration 60 --warmup 10  # a quick check
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from loadtest.loadgen import DEFAULT_PROMPTS, Target, _Connection, loopback_target, summarize
from loadtest.run import PYTHON, ROOT, RunError, free_port, http_get, stop_process, wait_ready

CLK_TCK = os.sysconf("SC_CLK_TCK")
FIRST_BYTE_MS = 1_000
OVERRIDE_HEADER = "x-gateway-route"

POLICY = """\
# Written by loadtest/soak.py: every route has a fallback, the first-byte timeout is short.
name: soak
version: "soak-1"
virtual_models: [auto]
backends:
  - {{name: small-sim, path: small, base_url: "{sim}/v1", model: sim-small, max_context_tokens: 16000,
     price_per_mtok_in: 0.1, price_per_mtok_out: 0.4, timeouts: {{connect_ms: 1000, first_byte_ms: {fb}, total_ms: 30000}}}}
  - {{name: rag-sim, path: rag, base_url: "{sim}/v1", model: sim-rag, max_context_tokens: 32000,
     price_per_mtok_in: 0.4, price_per_mtok_out: 1.6, timeouts: {{connect_ms: 1000, first_byte_ms: {fb}, total_ms: 30000}}}}
  - {{name: frontier-sim, path: frontier, base_url: "{sim}/v1", model: sim-frontier, max_context_tokens: 128000,
     price_per_mtok_in: 3, price_per_mtok_out: 15, timeouts: {{connect_ms: 1000, first_byte_ms: {fb}, total_ms: 30000}}}}
routes:
  small: {{backends: [small-sim, frontier-sim]}}
  rag: {{backends: [rag-sim, small-sim]}}
  frontier: {{backends: [frontier-sim, small-sim]}}
  long_context: {{backends: [frontier-sim]}}
default_route: frontier
baseline_backend: frontier-sim
rules:
  pinning: true
  override: {{header: {header}, allowed_routes: [small, rag, frontier]}}
  long_context: {{threshold_tokens: 12000}}
"""

# (name, share, model, route override): `pinned` has a single backend, so its faults reach the client.
MIX: tuple[tuple[str, float, str, str | None], ...] = (
    ("auto", 0.55, "auto", None),
    ("override-small", 0.15, "auto", "small"),
    ("override-rag", 0.15, "auto", "rag"),
    ("pinned", 0.15, "sim-small", None),
)
FAULT_KINDS = ("status_500", "status_503", "reset_mid_stream", "slow_first_byte")


@dataclass(frozen=True, slots=True)
class SoakSpec:
    duration_s: float = 300.0
    warmup_s: float = 30.0
    window_s: float = 60.0
    concurrency: int = 16
    stream_share: float = 0.5
    fault_rate: float = 0.01
    sample_every_s: float = 2.0
    timeout_s: float = 30.0
    ttft_ms: float = 20.0
    tokens_per_second: float = 400.0
    answer_tokens: int = 32
    seed: int = 1
    out_dir: Path = ROOT / "loadtest" / "out"


@dataclass(frozen=True, slots=True)
class RequestKind:
    name: str
    stream: bool
    data: bytes


@dataclass(frozen=True, slots=True)
class Sample:
    t_s: float
    rss_mib: float
    fds: int
    cpu_s: float
    answered: int


@dataclass(slots=True)
class Tally:
    outcomes: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    sent: int = 0
    answered: int = 0


# -- classifying answers (pure) ------------------------------------------------------------------
def _error_code(doc: object) -> str | None:
    """The code of an OpenAI-shaped error body, '-' when it is null; None if not that shape."""
    if not isinstance(doc, dict) or set(doc) != {"error"}:
        return None
    error = doc["error"]
    if not isinstance(error, dict) or not {"message", "type", "param", "code"} <= set(error):
        return None
    if not isinstance(error["message"], str) or not isinstance(error["type"], str):
        return None
    return str(error["code"]) if error["code"] is not None else "-"


def _loads(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def classify(status: int, body: bytes, stream: bool) -> str:
    if status >= 400:
        code = _error_code(_loads(body))
        return f"error:{status}:{code}" if code is not None else f"unclean:status_{status}"
    if status != 200:
        return f"unclean:status_{status}"
    if not stream:
        doc = _loads(body)
        return "ok" if isinstance(doc, dict) and doc.get("choices") else "unclean:json_body"
    events = [e.strip() for e in body.split(b"\n\n") if e.strip()]
    if not events:
        return "unclean:empty_stream"
    last = events[-1]
    if last == b"data: [DONE]":
        return "ok"
    if last.startswith(b"data: "):
        code = _error_code(_loads(last[6:]))
        if code is not None:
            return f"stream_error:{code}"
    return "unclean:stream_end"


def is_clean(outcome: str) -> bool:
    return not outcome.startswith(("unclean:", "lost:"))


# -- requests ------------------------------------------------------------------------------------
def request_kinds(target: Target, answer_tokens: int) -> list[tuple[float, list[RequestKind]]]:
    """Per mix entry: its share and the prepared requests (every prompt, JSON and stream)."""
    host = f"{target.host}:{target.port}".encode()
    out: list[tuple[float, list[RequestKind]]] = []
    for name, share, model, route in MIX:
        kinds = []
        for stream in (False, True):
            for prompt in DEFAULT_PROMPTS:
                body: dict[str, Any] = {
                    "model": model,
                    "messages": [
                        {"role": "system", "content": "You are a helpful assistant."},
                        {"role": "user", "content": prompt},
                    ],
                    "max_tokens": answer_tokens,
                }
                if stream:
                    body["stream"] = True
                    body["stream_options"] = {"include_usage": True}
                payload = orjson.dumps(body)
                extra = f"{OVERRIDE_HEADER}: {route}\r\n".encode() if route else b""
                data = (
                    b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n%s\r\n%s"
                    % (target.path.encode(), host, len(payload), extra, payload)
                )
                kinds.append(RequestKind(f"{name}-{'stream' if stream else 'json'}", stream, data))
        out.append((share, kinds))
    return out


def pick(
    rng: random.Random, mix: Sequence[tuple[float, list[RequestKind]]], stream_share: float
) -> RequestKind:
    draw, edge = rng.random(), 0.0
    kinds = mix[-1][1]
    for share, candidates in mix:
        edge += share
        if draw < edge:
            kinds = candidates
            break
    stream = rng.random() < stream_share
    return rng.choice([k for k in kinds if k.stream == stream])


# -- the gateway process -------------------------------------------------------------------------
def proc_sample(pid: int) -> tuple[float, int, float]:
    """RSS (MiB), open fds and CPU seconds (utime + stime) of one process."""
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
            break
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return rss_kb / 1024, fds, (int(fields[11]) + int(fields[12])) / CLK_TCK


# -- the load ------------------------------------------------------------------------------------
async def drive(spec: SoakSpec, url: str, gateway_pid: int) -> tuple[Tally, list[Sample]]:
    target = loopback_target(url)
    mix = request_kinds(target, spec.answer_tokens)
    loop = asyncio.get_running_loop()
    tally = Tally()
    samples: list[Sample] = []
    t0 = time.perf_counter()
    t_end = t0 + spec.warmup_s + spec.duration_s

    async def worker(index: int) -> None:
        rng = random.Random(spec.seed * 1000 + index)
        conn: _Connection | None = None
        try:
            while time.perf_counter() < t_end:
                if conn is None or conn.closed or not conn.keep:
                    if conn is not None:
                        conn.close()
                    try:
                        _, conn = await asyncio.wait_for(
                            loop.create_connection(lambda: _Connection(loop), target.host, target.port),
                            spec.timeout_s,
                        )
                    except (OSError, TimeoutError):
                        conn = None
                        tally.outcomes["lost:connect"] += 1
                        await asyncio.sleep(0.1)
                        continue
                assert conn is not None
                kind = pick(rng, mix, spec.stream_share)
                tally.sent += 1
                started = time.perf_counter()
                try:
                    resp = await conn.request(kind.data, spec.timeout_s)
                except TimeoutError:
                    outcome = "lost:timeout"
                except ConnectionError:
                    outcome = "lost:connection"
                else:
                    outcome = classify(resp.status, resp.body, kind.stream)
                    tally.answered += 1
                    if outcome == "ok":
                        tally.latencies_ms.append((time.perf_counter() - started) * 1000)
                tally.outcomes[outcome] += 1
                tally.by_kind[f"{kind.name} {outcome}"] += 1
        finally:
            if conn is not None:
                conn.close()

    async def sampler() -> None:
        while True:
            rss, fds, cpu = proc_sample(gateway_pid)
            samples.append(Sample(round(time.perf_counter() - t0, 2), rss, fds, cpu, tally.answered))
            await asyncio.sleep(spec.sample_every_s)

    sampling = loop.create_task(sampler())
    workers = [loop.create_task(worker(i)) for i in range(spec.concurrency)]
    # Requests in flight at the end get their timeout; no worker can take longer than that.
    await asyncio.wait(workers, timeout=spec.warmup_s + spec.duration_s + spec.timeout_s + 10)
    for task in workers:
        task.cancel()
    results = await asyncio.gather(*workers, return_exceptions=True)
    sampling.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sampling
    crashed = [
        r for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
    ]
    if crashed:
        raise RunError(f"a load worker failed: {crashed[0]!r}")
    rss, fds, cpu = proc_sample(gateway_pid)
    samples.append(Sample(round(time.perf_counter() - t0, 2), rss, fds, cpu, tally.answered))
    return tally, samples


# -- the verdict ---------------------------------------------------------------------------------
def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def verdict(spec: SoakSpec, tally: Tally, samples: Sequence[Sample]) -> dict[str, Any]:
    start = spec.warmup_s
    end = spec.warmup_s + spec.duration_s
    first = [s for s in samples if start <= s.t_s <= start + spec.window_s]
    last = [s for s in samples if end - spec.window_s <= s.t_s <= end]
    rss_first, rss_last = _mean([s.rss_mib for s in first]), _mean([s.rss_mib for s in last])
    fd_first_max = max((s.fds for s in first), default=0)
    fd_last_mean = _mean([s.fds for s in last])
    lost = sum(n for k, n in tally.outcomes.items() if k.startswith("lost:"))
    unclean = sum(n for k, n in tally.outcomes.items() if k.startswith("unclean:"))
    rss_growth = 100.0 * (rss_last - rss_first) / rss_first if rss_first else float("nan")
    measured = [s for s in samples if start <= s.t_s <= end]
    cpu_s = measured[-1].cpu_s - measured[0].cpu_s if len(measured) > 1 else 0.0
    answered = measured[-1].answered - measured[0].answered if len(measured) > 1 else 0
    checks = {
        "zero_lost": lost == 0,
        "zero_unclean": unclean == 0,
        "rss_growth_below_10pct": rss_growth < 10.0,
        "no_fd_growth": fd_last_mean <= fd_first_max,
    }
    return {
        "passed": all(checks.values()),
        "checks": checks,
        "requests_sent": tally.sent,
        "answered": tally.answered,
        "lost": lost,
        "unclean": unclean,
        "outcomes": dict(sorted(tally.outcomes.items())),
        "outcomes_by_kind": dict(sorted(tally.by_kind.items())),
        "rps_measured": answered / spec.duration_s if spec.duration_s else 0.0,
        "gateway_cpu_ms_per_request": 1000.0 * cpu_s / answered if answered else float("nan"),
        "latency_ok_ms": summarize(tally.latencies_ms),
        "rss_mib": {
            "first_window_mean": rss_first,
            "last_window_mean": rss_last,
            "growth_pct": rss_growth,
            "max": max((s.rss_mib for s in samples), default=0.0),
        },
        "fds": {
            "first_window_max": fd_first_max,
            "first_window_mean": _mean([s.fds for s in first]),
            "last_window_mean": fd_last_mean,
            "last_window_max": max((s.fds for s in last), default=0),
            "max": max((s.fds for s in samples), default=0),
        },
        "windows_s": {"first": [start, start + spec.window_s], "last": [end - spec.window_s, end]},
    }


def machine() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
        model = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "?"
        )
    versions = {}
    for dist in (
        "fastapi",
        "starlette",
        "uvicorn",
        "httpx",
        "httpx-aiohttp",
        "aiohttp",
        "orjson",
        "uvloop",
        "httptools",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "loadavg": os.getloadavg(),
    }


# -- running it ----------------------------------------------------------------------------------
def simulator_cmd(spec: SoakSpec, port: int) -> list[str]:
    faults = [f"--fault={kind}:{spec.fault_rate / len(FAULT_KINDS):g}" for kind in FAULT_KINDS]
    faults[-1] += f":delay_ms={FIRST_BYTE_MS * 2.5:g}"  # slow_first_byte: beyond the first-byte timeout
    return [
        PYTHON, "-m", "gateway.simulator", "--host", "127.0.0.1", "--port", str(port),
        "--ttft-ms", f"{spec.ttft_ms:g}", "--tokens-per-second", f"{spec.tokens_per_second:g}",
        "--max-tokens-default", str(spec.answer_tokens), "--seed", str(spec.seed),
        "--lifetime-s", str(int(spec.warmup_s + spec.duration_s + spec.timeout_s + 300)), *faults,
    ]  # fmt: skip


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):
        stop_process(proc)


def run(spec: SoakSpec) -> dict[str, Any]:
    out = spec.out_dir / f"soak-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    print(f"soak: {spec.warmup_s:g} s warm-up + {spec.duration_s:g} s, writing {out}", flush=True)
    before = machine()
    procs: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as stack:
        sim_port, gw_port = free_port(), free_port()
        sim_url, gw_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{gw_port}"
        loopback_target(gw_url)  # the load generator's guard: loopback only
        sim_log = stack.enter_context((out / "simulator.log").open("wb"))
        sim = subprocess.Popen(
            simulator_cmd(spec, sim_port), cwd=ROOT, stdout=sim_log, stderr=subprocess.STDOUT
        )
        procs.append(sim)
        stack.callback(_stop_all, procs)
        wait_ready(f"{sim_url}/health", sim, 30, out / "simulator.log")
        policy = out / "policy.yaml"
        policy.write_text(
            POLICY.format(sim=sim_url, fb=FIRST_BYTE_MS, header=OVERRIDE_HEADER), encoding="utf-8"
        )
        gw_log = stack.enter_context((out / "gateway.log").open("wb"))
        cmd = [
            PYTHON, "-m", "gateway.cli", "serve", "--policy", str(policy), "--host", "127.0.0.1",
            "--port", str(gw_port), "--workers", "1", "--no-classifier", "--log-level", "warning",
        ]  # fmt: skip
        gateway = subprocess.Popen(
            cmd, cwd=ROOT, stdout=gw_log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"}
        )
        procs.append(gateway)
        wait_ready(f"{gw_url}/readyz", gateway, 60, out / "gateway.log")
        tally, samples = _event_loop_run(drive(spec, gw_url, gateway.pid))
        sim_stats = _loads(http_get(f"{sim_url}/__sim/stats")[1])
        still_running = gateway.poll() is None
    result = verdict(spec, tally, samples)
    result["checks"]["gateway_survived"] = still_running
    result["passed"] = result["passed"] and still_running
    log_text = (out / "gateway.log").read_text(errors="replace")
    result["gateway_log_error_lines"] = sum(
        1 for ln in log_text.splitlines() if " ERROR " in ln or "Traceback" in ln
    )
    result.update(
        {
            "tool": "loadtest/soak.py",
            "command": " ".join([".venv/bin/python", "-m", "loadtest.soak", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "spec": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(spec).items()},
            "faults": {
                "kinds": FAULT_KINDS,
                "total_rate": spec.fault_rate,
                "first_byte_timeout_ms": FIRST_BYTE_MS,
            },
            "simulator": sim_stats,
            "machine": before,
            "loadavg_after": os.getloadavg(),
            "out": str(out),
        }
    )
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    with (out / "samples.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["t_s", "rss_mib", "fds", "cpu_s", "answered"])
        writer.writerows([s.t_s, f"{s.rss_mib:.2f}", s.fds, f"{s.cpu_s:.2f}", s.answered] for s in samples)
    return result


def _event_loop_run(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def report(result: dict[str, Any]) -> str:
    rss, fds = result["rss_mib"], result["fds"]
    lines = [
        f"{'PASS' if result['passed'] else 'FAIL'}  {result['requests_sent']} requests, "
        f"{result['answered']} answered, lost {result['lost']}, unclean {result['unclean']}, "
        f"{result['rps_measured']:.1f} req/s, gateway {result['gateway_cpu_ms_per_request']:.2f} CPU ms/request",
        f"RSS {rss['first_window_mean']:.1f} -> {rss['last_window_mean']:.1f} MiB ({rss['growth_pct']:+.2f} %), "
        f"fds first-window max {fds['first_window_max']} / last-window mean {fds['last_window_mean']:.1f}",
        "outcomes: " + ", ".join(f"{k} {v}" for k, v in result["outcomes"].items()),
        "checks: " + ", ".join(f"{k}={'ok' if v else 'FAILED'}" for k, v in result["checks"].items()),
        f"details: {result['out']}/results.json",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> SoakSpec:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = SoakSpec()
    ap.add_argument("--duration", type=float, default=d.duration_s, help="measured seconds (default 300)")
    ap.add_argument("--warmup", type=float, default=d.warmup_s, help="seconds before measuring (default 30)")
    ap.add_argument(
        "--window", type=float, help="seconds compared at start and end (default min(60, duration/4))"
    )
    ap.add_argument("-c", "--concurrency", type=int, default=d.concurrency)
    ap.add_argument("--stream-share", type=float, default=d.stream_share, help="share of streaming requests")
    ap.add_argument(
        "--fault-rate", type=float, default=d.fault_rate, help="share of upstream answers that fail"
    )
    ap.add_argument("--sample-every", type=float, default=d.sample_every_s, help="seconds between samples")
    ap.add_argument("--timeout", type=float, default=d.timeout_s, help="per-request timeout, seconds")
    ap.add_argument("--ttft-ms", type=float, default=d.ttft_ms, help="simulator time to first token")
    ap.add_argument("--tokens-per-second", type=float, default=d.tokens_per_second, help="simulator pace")
    ap.add_argument("--answer-tokens", type=int, default=d.answer_tokens, help="tokens per answer")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--out-dir", type=Path, default=d.out_dir)
    a = ap.parse_args(argv)
    if not (0 < a.duration <= 86_400 and 0 <= a.warmup <= 3_600 and 1 <= a.concurrency <= 1_024):
        ap.error("--duration must be in (0, 86400], --warmup in [0, 3600], -c in [1, 1024]")
    if not (0 <= a.stream_share <= 1 and 0 <= a.fault_rate <= 1 and a.sample_every > 0 and a.timeout > 0):
        ap.error("--stream-share and --fault-rate must be in [0, 1]; --sample-every and --timeout > 0")
    window = a.window if a.window is not None else min(60.0, a.duration / 4)
    if not 0 < window <= a.duration / 2:
        ap.error("--window must be positive and at most half of --duration")
    return SoakSpec(
        duration_s=a.duration,
        warmup_s=a.warmup,
        window_s=window,
        concurrency=a.concurrency,
        stream_share=a.stream_share,
        fault_rate=a.fault_rate,
        sample_every_s=a.sample_every,
        timeout_s=a.timeout,
        ttft_ms=a.ttft_ms,
        tokens_per_second=a.tokens_per_second,
        answer_tokens=a.answer_tokens,
        seed=a.seed,
        out_dir=a.out_dir,
    )


def main(argv: Sequence[str] | None = None) -> int:
    spec = parse_args(argv)
    try:
        result = run(spec)
    except RunError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    print(report(result))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
