#!/usr/bin/env python3
"""What observability costs: the same load through a gateway with metrics and the decision log
on, and through one with both off, in the same run.

Starts the upstream simulator answering instantly, then two gateways on the same policy
(`--workers 1`): "on" (GATEWAY_METRICS_ENABLED=true, `--decision-log FILE`, /metrics scraped
every --scrape-interval seconds as Prometheus would) and "off" (GATEWAY_METRICS_ENABLED=false,
no decision log). For each --repeats it runs loadtest/loadgen.py against both, alternating which
goes first, and records throughput, latency and the gateway's CPU time per request (from
/proc, the figure least disturbed by a busy machine). Writes
loadtest/out/observability-<timestamp>/results.json and results.md.

    .venv/bin/python loadtest/observability.py -c 16 -d 20 --warmup 3 -r 5              # the measurement
    .venv/bin/python loadtest/observability.py -c 16 -d 20 -r 5 --stream                 # streams
    .venv/bin/python loadtest/observability.py -c 4 -d 2 --warmup 0.5 -r 1               # a quick check
    .venv/bin/python loadtest/observability.py --gateway-cpus 0 --sim-cpus 1 --loadgen-cpus 1 ...

Run the measurement on a quiet machine; with other work on the CPUs the difference between the
two gateways is smaller than the noise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
MODES = ("off", "on")


class SetupError(RuntimeError):
    """A setup failure with a message for the user."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pinned(cpus: str | None, cmd: list[str]) -> list[str]:
    if not cpus:
        return cmd
    if shutil.which("taskset") is None:
        raise SetupError("taskset not found (util-linux); drop the --*-cpus options")
    return ["taskset", "-c", cpus, *cmd]


def tree_cpu_s(root: int) -> float:
    """User + system CPU seconds of a process and its children (from /proc)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        pid = int(entry.name)
        stats[pid] = fields
        children.setdefault(int(fields[1]), []).append(pid)
    total = 0.0
    todo = [root]
    while todo:
        pid = todo.pop()
        stat = stats.get(pid)
        if stat is not None:
            total += (int(stat[11]) + int(stat[12])) / CLK_TCK  # utime, stime
        todo.extend(children.get(pid, []))
    return total


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SetupError(f"{url}: process exited with {proc.returncode}; see {log}")
        with contextlib.suppress(urllib.error.URLError, OSError), urllib.request.urlopen(url, timeout=1) as r:
            if r.status == 200:
                return
        time.sleep(0.1)
    raise SetupError(f"{url} not ready within {timeout_s} s; see {log}")


@contextlib.contextmanager
def started(cmd: list[str], ready: str, log: Path, env: dict[str, str], timeout_s: float) -> Iterator[int]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            wait_ready(ready, proc, timeout_s, log)
            yield proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def rewrite_policy(src: Path, sim_base: str, dest: Path) -> Path:
    """The policy with every backend on the simulator and the classifier artefact made absolute."""
    data = yaml.safe_load(src.read_text(encoding="utf-8"))
    for backend in data.get("backends", []):
        backend["base_url"] = sim_base
    classifier = data.get("classifier")
    if isinstance(classifier, dict) and "artefact" in classifier:
        classifier["artefact"] = str((src.parent / classifier["artefact"]).resolve())
    dest.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return dest


@dataclass(frozen=True)
class Gateway:
    mode: str
    url: str
    pid: int


class Scraper(threading.Thread):
    """GET /metrics every ``interval`` seconds while the "on" gateway is under load."""

    def __init__(self, url: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.stop = threading.Event()
        self.scrapes = 0

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as r,
            ):
                r.read()
                self.scrapes += 1


def run_once(args: argparse.Namespace, gw: Gateway, out: Path, index: int) -> dict[str, Any]:
    result_file = out / f"loadgen-{gw.mode}-{index}.json"
    cmd = [
        PYTHON, str(ROOT / "loadtest" / "loadgen.py"), "--url", gw.url, "-c", str(args.concurrency),
        "-d", str(args.duration), "--warmup", str(args.warmup), "--out", str(result_file),
    ]  # fmt: skip
    if args.stream:
        cmd.append("--stream")
    if args.max_tokens is not None:
        cmd += ["--max-tokens", str(args.max_tokens)]
    scraper = Scraper(gw.url, args.scrape_interval) if gw.mode == "on" and args.scrape_interval > 0 else None
    if scraper is not None:
        scraper.start()
    # CPU is counted over warm-up and measurement together, so divide by every request sent.
    before = tree_cpu_s(gw.pid)
    subprocess.run(pinned(args.loadgen_cpus, cmd), cwd=ROOT, check=True)
    cpu = tree_cpu_s(gw.pid) - before
    if scraper is not None:
        scraper.stop.set()
        scraper.join()
    result: dict[str, Any] = json.loads(result_file.read_text())
    sent = int(result.get("sent", 0))  # warm-up included, as in the CPU figure
    result["gateway_cpu_s"] = cpu
    result["gateway_cpu_us_per_request"] = cpu / sent * 1e6 if sent else 0.0
    result["scrapes"] = scraper.scrapes if scraper is not None else 0
    return result


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for mode, results in runs.items():
        out[mode] = {
            "rps": statistics.median(r["rps"] for r in results),
            "p50_ms": statistics.median(r["latency_ms"]["p50"] for r in results),
            "p99_ms": statistics.median(r["latency_ms"]["p99"] for r in results),
            "cpu_us_per_request": statistics.median(r["gateway_cpu_us_per_request"] for r in results),
            "errors": float(sum(sum(r.get("errors", {}).values()) for r in results)),
        }
    return out


def markdown(summary: dict[str, dict[str, float]], meta: dict[str, Any]) -> str:
    off, on = summary["off"], summary["on"]

    def delta(key: str) -> str:
        base = off[key]
        return f"{on[key] - base:+.2f} ({(on[key] / base - 1) * 100:+.1f}%)" if base else "-"

    rows = [
        "| gateway | rps | p50 ms | p99 ms | gateway CPU us/request | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode in MODES:
        s = summary[mode]
        rows.append(
            f"| {mode} | {s['rps']:.1f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | "
            f"{s['cpu_us_per_request']:.1f} | {s['errors']:.0f} |"
        )
    rows.append(
        f"| on - off | {delta('rps')} | {delta('p50_ms')} | {delta('p99_ms')} | "
        f"{delta('cpu_us_per_request')} | |"
    )
    return "\n".join(
        [
            "# Cost of observability (metrics + decision log)",
            "",
            f"Date {meta['date']}, host {meta['host']}, Python {meta['python']}, {meta['cpus']} CPUs.",
            f"Command: `{meta['command']}`",
            "",
            'Medians over the repeats. "on": GATEWAY_METRICS_ENABLED=true, --decision-log FILE, '
            f'/metrics scraped every {meta["scrape_interval"]} s; "off": metrics and log off.',
            "",
            *rows,
            "",
        ]
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", type=Path, default=ROOT / "policies" / "default.yaml")
    ap.add_argument(
        "--classifier", action="store_true", help="keep the policy's classifier (default: rules only)"
    )
    ap.add_argument("-c", "--concurrency", type=int, default=16)
    ap.add_argument("-d", "--duration", type=float, default=20.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("-r", "--repeats", type=int, default=5)
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--max-tokens", type=int, default=None)
    ap.add_argument("--scrape-interval", type=float, default=5.0, help="seconds; 0 = never scrape")
    ap.add_argument("--gateway-cpus", help="taskset CPU list for the gateways, e.g. 0")
    ap.add_argument("--sim-cpus", help="taskset CPU list for the simulator")
    ap.add_argument("--loadgen-cpus", help="taskset CPU list for the load generator")
    ap.add_argument("--out", type=Path, help="output folder (default loadtest/out/observability-<time>)")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.duration <= 0 or args.concurrency < 1:
        ap.error("--repeats, --duration and --concurrency must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"error: the load generator failed ({exc.returncode})", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or ROOT / "loadtest" / "out" / f"observability-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    env = {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    sim_port = free_port()
    sim_cmd = [
        PYTHON, "-m", "gateway.simulator", "--host", "127.0.0.1", "--port", str(sim_port),
        "--ttft-ms", "0", "--tokens-per-second", "0",
    ]  # fmt: skip
    sim = f"http://127.0.0.1:{sim_port}"
    with started(pinned(args.sim_cpus, sim_cmd), f"{sim}/health", out / "simulator.log", env, 30):
        policy = rewrite_policy(args.policy, f"{sim}/v1", out / "policy.yaml")
        with contextlib.ExitStack() as stack:
            gateways: dict[str, Gateway] = {}
            for mode in MODES:
                port = free_port()
                cmd = [
                    PYTHON, "-m", "gateway.cli", "serve", "--policy", str(policy), "--host", "127.0.0.1",
                    "--port", str(port), "--workers", "1", "--log-level", "warning",
                ]  # fmt: skip
                if not args.classifier:
                    cmd.append("--no-classifier")
                if mode == "on":
                    cmd += ["--decision-log", str(out / "decisions.jsonl")]
                gw_env = {**env, "GATEWAY_METRICS_ENABLED": "true" if mode == "on" else "false"}
                url = f"http://127.0.0.1:{port}"
                pid = stack.enter_context(
                    started(
                        pinned(args.gateway_cpus, cmd),
                        f"{url}/readyz",
                        out / f"gateway-{mode}.log",
                        gw_env,
                        240,
                    )
                )
                gateways[mode] = Gateway(mode, url, pid)
            runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
            for i in range(args.repeats):
                order = MODES if i % 2 == 0 else MODES[::-1]
                for mode in order:
                    result = run_once(args, gateways[mode], out, i)
                    runs[mode].append(result)
                    print(
                        f"repeat {i + 1}/{args.repeats} {mode:>3}: {result['rps']:.0f} rps, "
                        f"p50 {result['latency_ms']['p50']:.2f} ms, "
                        f"{result['gateway_cpu_us_per_request']:.0f} us CPU/request",
                        file=sys.stderr,
                    )
    summary = summarise(runs)
    meta = {
        "date": stamp,
        "host": platform.node(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "command": " ".join([Path(sys.argv[0]).name, *(sys.argv[1:])]),
        "scrape_interval": args.scrape_interval,
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    (out / "results.json").write_text(json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=2))
    text = markdown(summary, meta)
    (out / "results.md").write_text(text)
    print(text)
    print(f"wrote {out / 'results.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
