#!/usr/bin/env python3
"""Side-by-side benchmark: the same load straight to the simulator and through the gateway.

Starts the upstream simulator answering instantly (pinned to --sim-cpus), one gateway per
--policy (pinned to --gateway-cpus, `--workers 1`), waits for the gateway's /readyz, then for
every mode x concurrency runs the load generator (pinned to --loadgen-cpus) interleaved:
direct, gateway(s), direct, gateway(s)... --repeats times. Writes
loadtest/out/<timestamp>/results.json and results.md.

Each policy is copied into the output folder with every `base_url` pointed at the simulator
(scheme, host and port replaced, path kept) and every relative path that exists next to the
original made absolute, so the copy loads from anywhere.

    .venv/bin/python loadtest/run.py --policy rules=policies/rules-only.yaml \\
        --policy classifier=policies/default.yaml -c 1,16,64 --modes json,stream -d 10 --warmup 2 -r 3
    .venv/bin/python loadtest/run.py --self-test -d 2 --warmup 0.5 -r 1   # runner check, no gateway
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


class RunError(RuntimeError):
    """A setup failure with a message for the user."""


# -- processes -----------------------------------------------------------------------------------
def _proc_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from 3 (state) on


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _proc_stat(int(entry.name))
            if st is not None:
                children.setdefault(int(st[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_cpu_s(root: int) -> float:
    """utime+stime of the live tree, plus cutime+cstime of the root (children already reaped)."""
    total = 0
    for pid in process_tree(root):
        st = _proc_stat(pid)
        if st is not None:
            total += int(st[11]) + int(st[12]) + (int(st[13]) + int(st[14]) if pid == root else 0)
    return total / CLK_TCK


def tree_rss_mib(root: int) -> float:
    kb = 0
    for pid in process_tree(root):
        with contextlib.suppress(OSError, IndexError, ValueError):
            kb += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
    return kb / 1024


class RssSampler(threading.Thread):
    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0.0)
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.5):
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], tree_rss_mib(pid))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpus: str, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *cmd] if cpus else cmd


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_post_json(
    url: str, body: dict[str, Any], headers: dict[str, str], timeout: float = 30.0
) -> tuple[int, bytes]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RunError(f"{url}: the process exited with code {proc.returncode}; see {log}")
        try:
            status, body = http_get(url)
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if status == 200:
                return
            last = f"{status} {body[:300]!r}"
        time.sleep(0.2)
    raise RunError(f"{url} did not answer 200 within {timeout_s:.0f} s (last: {last}); see {log}")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# -- policies ------------------------------------------------------------------------------------
def rewrite_policy(src: Path, sim_base: str) -> Any:
    """The policy with every base_url pointed at the simulator and relative paths made absolute."""
    try:
        doc = yaml.safe_load(src.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunError(f"cannot read policy {src}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RunError(f"policy {src} is not valid YAML: {exc}") from None
    sim = urllib.parse.urlsplit(sim_base)

    def walk(node: Any, key: str | None = None) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            if key == "base_url":
                parts = urllib.parse.urlsplit(node)
                return urllib.parse.urlunsplit((sim.scheme, sim.netloc, parts.path, parts.query, ""))
            if node and not node.startswith(("/", "http:", "https:")) and (src.parent / node).exists():
                return str((src.parent / node).resolve())
        return node

    return walk(doc)


# -- the matrix ----------------------------------------------------------------------------------
@dataclass
class Target:
    name: str
    url: str
    pid: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    idle_rss_mib: float = 0.0
    runs: list[dict[str, Any]] = field(default_factory=list)


def run_loadgen(args: argparse.Namespace, url: str, mode: str, conc: int, out: Path) -> dict[str, Any]:
    cmd = [
        PYTHON,
        str(ROOT / "loadtest" / "loadgen.py"),
        "--url",
        url,
        "-c",
        str(conc),
        "-d",
        str(args.duration),
        "--warmup",
        str(args.warmup),
        "--timeout",
        str(args.timeout),
        "--model",
        args.model,
        "--max-requests",
        str(args.max_requests),
        "--out",
        str(out),
    ]
    if mode == "stream":
        cmd.append("--stream")
    if args.prompts:
        cmd += ["--prompts", str(args.prompts)]
    if args.max_tokens:
        cmd += ["--max-tokens", str(args.max_tokens)]
    for h in args.header:
        cmd += ["-H", h]
    budget = args.warmup + args.duration + args.timeout + 30
    done = subprocess.run(
        pinned(args.loadgen_cpus, cmd), cwd=ROOT, timeout=budget, check=False, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RunError(f"load generator failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def sim_served(sim_url: str) -> int:
    return int(json.loads(http_get(f"{sim_url}/__sim/stats")[1])["completed"])


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def summarize(
    direct: Target, gateways: list[Target], modes: list[str], concs: list[int]
) -> list[dict[str, Any]]:
    rows = []
    for gw in gateways:
        for mode in modes:
            for conc in concs:

                def pick(t: Target, m: str = mode, c: int = conc) -> list[dict[str, Any]]:
                    return [r for r in t.runs if r["mode"] == m and r["concurrency"] == c]

                d, g = pick(direct), pick(gw)
                if not d or not g:
                    continue
                row: dict[str, Any] = {"policy": gw.name, "mode": mode, "concurrency": conc}
                for prefix, runs in (("direct", d), ("gateway", g)):
                    row[f"{prefix}_p50_ms"] = med([r["latency_ms"]["p50"] for r in runs])
                    row[f"{prefix}_p99_ms"] = med([r["latency_ms"]["p99"] for r in runs])
                    row[f"{prefix}_rps"] = med([r["rps"] for r in runs])
                    row[f"{prefix}_errors"] = sum(sum(r["errors"].values()) for r in runs)
                    if mode == "stream":
                        row[f"{prefix}_ttft_p50_ms"] = med([r["ttft_ms"]["p50"] for r in runs])
                        row[f"{prefix}_ttft_p99_ms"] = med([r["ttft_ms"]["p99"] for r in runs])
                row["added_p50_ms"] = row["gateway_p50_ms"] - row["direct_p50_ms"]
                row["added_p99_ms"] = row["gateway_p99_ms"] - row["direct_p99_ms"]
                if mode == "stream":
                    row["added_ttft_p50_ms"] = row["gateway_ttft_p50_ms"] - row["direct_ttft_p50_ms"]
                row["gateway_cpu_ms_per_request"] = med([r["gateway_cpu_ms_per_request"] for r in g])
                row["gateway_rss_peak_mib"] = max(r["gateway_rss_peak_mib"] for r in g)
                rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any], gateways: list[Target]) -> str:
    def f(x: float) -> str:
        return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"

    out = [
        f"# Gateway vs direct — {meta['started']}",
        "",
        f"Machine: {meta['machine']}; Python {meta['python']}; load before: {meta['loadavg_before']}.",
        f"Runs: {meta['duration_s']} s after {meta['warmup_s']} s warm-up, {meta['repeats']} interleaved repeats, "
        "medians over repeats; latencies in ms; simulator answers instantly.",
        "",
        "| policy | mode | conc | direct p50 / p99 / RPS | gateway p50 / p99 / RPS | added p50 / p99 "
        "| TTFT p50 direct / gateway / added | gw CPU ms/req | gw RSS peak MiB | errors d/g |",
        "|---|---|---:|---|---|---|---|---:|---:|---|",
    ]
    for r in rows:
        ttft = "—"
        if r["mode"] == "stream":
            ttft = (
                f"{f(r['direct_ttft_p50_ms'])} / {f(r['gateway_ttft_p50_ms'])} / +{f(r['added_ttft_p50_ms'])}"
            )
        out.append(
            f"| {r['policy']} | {r['mode']} | {r['concurrency']} "
            f"| {f(r['direct_p50_ms'])} / {f(r['direct_p99_ms'])} / {r['direct_rps']:.0f} "
            f"| {f(r['gateway_p50_ms'])} / {f(r['gateway_p99_ms'])} / {r['gateway_rps']:.0f} "
            f"| +{f(r['added_p50_ms'])} / +{f(r['added_p99_ms'])} | {ttft} "
            f"| {f(r['gateway_cpu_ms_per_request'])} | {r['gateway_rss_peak_mib']:.0f} "
            f"| {r['direct_errors']} / {r['gateway_errors']} |"
        )
    out += [
        "",
        "RSS of each gateway process tree (MiB): "
        + "; ".join(f"{g.name} idle {g.idle_rss_mib:.0f}" for g in gateways),
        "",
    ]
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", action="append", default=[], metavar="NAME=FILE", help="repeatable")
    ap.add_argument("-c", "--concurrency", default="1,16,64")
    ap.add_argument("--modes", default="json,stream")
    ap.add_argument("-d", "--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("-r", "--repeats", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=30.0, help="per-request timeout of the load generator")
    ap.add_argument("--max-requests", type=int, default=2_000_000, help="per run")
    ap.add_argument("--extra-gateway-args", default="", help="appended to `gateway serve` (shell-quoted)")
    ap.add_argument(
        "--gateway-cmd",
        default=str(ROOT / ".venv" / "bin" / "gateway"),
        help="gateway executable (default .venv/bin/gateway)",
    )
    ap.add_argument("--ready-path", default="/readyz")
    ap.add_argument("--ready-timeout", type=float, default=180.0)
    ap.add_argument(
        "--self-test",
        action="store_true",
        help="use a second simulator instead of the gateway (checks the runner itself)",
    )
    ap.add_argument("--sim-port", type=int, default=0, help="0 = a free port")
    ap.add_argument("--sim-cpus", default="0")
    ap.add_argument("--gateway-cpus", default="1")
    ap.add_argument("--loadgen-cpus", default="0")
    ap.add_argument("--model", default="auto", help="model name the clients send")
    ap.add_argument("--max-tokens", type=int, default=0)
    ap.add_argument("--prompts", type=Path, help="one prompt per line, cycled")
    ap.add_argument("-H", "--header", action="append", default=[], help="'Name: value' sent to every target")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "loadtest" / "out")
    ap.add_argument(
        "--max-total-s", type=float, default=0, help="stop starting runs after this (0 = 2x estimate)"
    )
    a = ap.parse_args(argv)
    if not a.policy and not a.self_test:
        ap.error("give at least one --policy NAME=FILE (or --self-test)")
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except RunError as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    modes = [m for m in args.modes.split(",") if m]
    concs = [int(c) for c in args.concurrency.split(",") if c]
    if set(modes) - {"json", "stream"}:
        raise RunError("--modes takes json and/or stream")
    policies: list[tuple[str, Path | None]] = []
    for item in args.policy:
        name, sep, file = item.partition("=")
        if not sep:
            name, file = Path(item).stem, item
        policies.append((name, Path(file)))
    if args.self_test and not policies:
        policies = [("selftest", None)]
    n_runs = len(modes) * len(concs) * args.repeats * (1 + len(policies))
    estimate = n_runs * (args.duration + args.warmup + 1.0)
    max_total = args.max_total_s or 2 * estimate + 120
    started = time.strftime("%Y%m%d-%H%M%S")
    out = args.out_dir / started
    out.mkdir(parents=True, exist_ok=True)
    print(f"{n_runs} runs, about {estimate / 60:.1f} min; writing {out}", flush=True)

    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        sim_port = args.sim_port or free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        sim_log = (out / "simulator.log").open("wb")
        logs.append(sim_log)
        sim = subprocess.Popen(
            pinned(
                args.sim_cpus,
                [
                    PYTHON,
                    "-m",
                    "gateway.simulator",
                    "--port",
                    str(sim_port),
                    "--ttft-ms",
                    "0",
                    "--tokens-per-second",
                    "0",
                    "--lifetime-s",
                    str(int(max_total + 600)),
                ],
            ),
            cwd=ROOT,
            stdout=sim_log,
            stderr=subprocess.STDOUT,
        )
        procs.append(sim)
        wait_ready(f"{sim_url}/health", sim, 30, out / "simulator.log")

        gateways: list[Target] = []
        for name, policy in policies:
            port = free_port()
            if args.self_test:
                cmd = [
                    PYTHON,
                    "-m",
                    "gateway.simulator",
                    "--port",
                    str(port),
                    "--ttft-ms",
                    "0",
                    "--tokens-per-second",
                    "0",
                    "--lifetime-s",
                    str(int(max_total + 600)),
                ]
                ready = "/health"
            else:
                assert policy is not None
                copy = out / f"policy-{name}.yaml"
                copy.write_text(
                    yaml.safe_dump(rewrite_policy(policy, sim_url), sort_keys=False), encoding="utf-8"
                )
                cmd = [
                    args.gateway_cmd,
                    "serve",
                    "--policy",
                    str(copy),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                    *shlex.split(args.extra_gateway_args),
                ]
                ready = args.ready_path
            log = (out / f"gateway-{name}.log").open("wb")
            logs.append(log)
            env = {**os.environ, "HF_HUB_OFFLINE": "1"}
            proc = subprocess.Popen(
                pinned(args.gateway_cpus, cmd), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env
            )
            procs.append(proc)
            wait_ready(
                f"http://127.0.0.1:{port}{ready}", proc, args.ready_timeout, out / f"gateway-{name}.log"
            )
            gateways.append(Target(name, f"http://127.0.0.1:{port}", proc.pid, proc))
        direct = Target("direct", sim_url)

        headers = dict((k.strip(), v.strip()) for k, _, v in (h.partition(":") for h in args.header))
        smoke = {"model": args.model, "messages": [{"role": "user", "content": "smoke test: say hello"}]}
        for t in [direct, *gateways]:
            status, body = http_post_json(f"{t.url}/v1/chat/completions", smoke, headers)
            if status != 200 or b'"usage"' not in body:
                raise RunError(f"{t.name}: smoke request answered {status}: {body[:300]!r}")
        time.sleep(1.0)
        for g in gateways:
            assert g.pid is not None
            g.idle_rss_mib = tree_rss_mib(g.pid)

        loadavg_before = Path("/proc/loadavg").read_text().split()[:3]
        t_start = time.monotonic()
        k = 0
        for mode in modes:
            for conc in concs:
                for rep in range(args.repeats):
                    for t in [direct, *gateways]:
                        if time.monotonic() - t_start > max_total:
                            raise RunError(f"stopped: the run exceeded --max-total-s {max_total:.0f}")
                        k += 1
                        sampler = RssSampler({t.name: t.pid}) if t.pid else None
                        cpu0 = tree_cpu_s(t.pid) if t.pid else 0.0
                        served0 = sim_served(sim_url)
                        if sampler:
                            sampler.start()
                        res = run_loadgen(
                            args, t.url, mode, conc, out / f"run-{k:03d}-{t.name}-{mode}-c{conc}.json"
                        )
                        if sampler:
                            sampler.halt.set()
                            sampler.join()
                        res.update(target=t.name, repeat=rep, sim_served=sim_served(sim_url) - served0)
                        if t.pid:
                            cpu = tree_cpu_s(t.pid) - cpu0
                            res["gateway_cpu_s"] = cpu
                            res["gateway_cpu_ms_per_request"] = 1000 * cpu / max(1, res["sent"])
                            assert sampler is not None
                            res["gateway_rss_peak_mib"] = max(sampler.peak[t.name], tree_rss_mib(t.pid))
                        t.runs.append(res)
                        errs = sum(res["errors"].values())
                        ttft = f" ttft p50 {res['ttft_ms']['p50']:.2f}" if mode == "stream" else ""
                        print(
                            f"[{k}/{n_runs}] {t.name:>10} {mode:6} c={conc:<3} rps {res['rps']:8.0f} "
                            f"p50 {res['latency_ms']['p50']:8.2f} p99 {res['latency_ms']['p99']:8.2f}{ttft} "
                            f"errors {errs}",
                            flush=True,
                        )
        rows = summarize(direct, gateways, modes, concs)
        meta = {
            "started": started,
            "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
            f"{platform.system()} {platform.release()}",
            "python": platform.python_version(),
            "loadavg_before": " ".join(loadavg_before),
            "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeats": args.repeats,
            "modes": modes,
            "concurrency": concs,
            "self_test": args.self_test,
            "policies": {n: str(p) for n, p in policies},
            "extra_gateway_args": args.extra_gateway_args,
            "model": args.model,
            "cpus": {"simulator": args.sim_cpus, "gateway": args.gateway_cpus, "loadgen": args.loadgen_cpus},
        }
        report = markdown(rows, meta, gateways)
        (out / "results.json").write_text(
            json.dumps(
                {
                    "meta": meta,
                    "summary": rows,
                    "idle_rss_mib": {g.name: g.idle_rss_mib for g in gateways},
                    "runs": [r for t in [direct, *gateways] for r in t.runs],
                },
                indent=1,
            ),
            encoding="utf-8",
        )
        (out / "results.md").write_text(report, encoding="utf-8")
        print(report)
        return 0
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        for log in logs:
            log.close()


if __name__ == "__main__":
    sys.exit(main())
