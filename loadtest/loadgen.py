#!/usr/bin/env python3
"""Closed-loop load generator for OpenAI-compatible chat completions (loopback only).

N keep-alive connections each send a request, read and check the whole answer, and send the
next, for --warmup seconds (not measured) and then --duration seconds (measured), or until
--max-requests requests were sent. Requests still open at the end get --timeout more seconds.

The client is a raw asyncio protocol with httptools parsing (uvloop when installed): it costs
a fraction of what aiohttp or httpx cost per request, so it is not the bottleneck at the rates
a gateway reaches on one core (see loadtest/README.md for the figures).

Checks: a JSON answer must parse and carry `choices` and `usage`; a stream must end with
`data: [DONE]` (and carry a usage chunk when include_usage is on). Time to first chunk is the
time to the first SSE `data:` event.

Output: one JSON object (stdout, or --out FILE): requests, rps, latency_ms{p50,p90,p99,...},
ttft_ms{...} for streams, errors{connect,timeout,status,bad_body,disconnect}, status_codes,
loadgen_cpu_ms_per_request.

    python loadtest/loadgen.py --url http://127.0.0.1:9100 -c 16 -d 10 --warmup 2 [--stream]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import itertools
import json
import math
import resource
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httptools
import orjson

DEFAULT_PROMPTS = (
    "hi, what's the weather usually like in Lisbon in May?",
    "According to our internal wiki, what is the on-call escalation policy for payment outages?",
    "Summarise the attached 40-page contract and list every termination clause with its notice period.",
    "Prove that there are infinitely many primes p such that p + 2 is also prime, or explain why it is open.",
    "Translate 'good morning, how are you?' into French.",
    "Using the product documentation, how do I rotate the API keys for the EU region?",
    "Design a sharded multi-region rate limiter; compare token bucket and sliding window under clock skew.",
    "What is 17 times 23?",
)


class LoadgenError(ValueError):
    """Bad options; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    path: str


@dataclass(frozen=True, slots=True)
class LoadSpec:
    url: str
    concurrency: int = 16
    duration_s: float = 10.0
    warmup_s: float = 2.0
    max_requests: int = 1_000_000
    timeout_s: float = 30.0
    stream: bool = False
    model: str = "auto"
    max_tokens: int | None = None
    include_usage: bool = True
    headers: tuple[tuple[str, str], ...] = ()
    prompts: tuple[str, ...] = DEFAULT_PROMPTS


@dataclass(slots=True)
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    ttfts_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    status_codes: Counter[int] = field(default_factory=Counter)
    sent: int = 0
    bytes_in: int = 0


def loopback_target(url: str) -> Target:
    """Parse a base URL, `/v1` URL or full completions URL; refuse anything not on loopback."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http":
        raise LoadgenError(f"{url!r}: only http:// URLs are supported")
    host = parts.hostname or ""
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise LoadgenError(f"refusing {url!r}: targets must be on 127.0.0.0/8, localhost or ::1")
    path = parts.path.rstrip("/")
    if not path.endswith("/completions"):
        path = (path if path.endswith("/v1") else path + "/v1") + "/chat/completions"
    if parts.query:
        path += "?" + parts.query
    return Target(host, parts.port or 80, path)


def percentile(sorted_xs: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 when empty)."""
    if not sorted_xs:
        return 0.0
    rank = math.ceil(p / 100.0 * len(sorted_xs))
    return sorted_xs[min(len(sorted_xs), max(1, rank)) - 1]


def summarize(xs: Sequence[float]) -> dict[str, float]:
    s = sorted(xs)
    if not s:
        return {k: 0.0 for k in ("min", "mean", "p50", "p90", "p99", "p999", "max")}
    return {
        "min": s[0],
        "mean": sum(s) / len(s),
        "p50": percentile(s, 50),
        "p90": percentile(s, 90),
        "p99": percentile(s, 99),
        "p999": percentile(s, 99.9),
        "max": s[-1],
    }


def build_requests(spec: LoadSpec, target: Target) -> list[bytes]:
    host = f"[{target.host}]" if ":" in target.host else target.host
    extra = b"".join(f"{k}: {v}\r\n".encode() for k, v in spec.headers)
    legacy = target.path.split("?")[0].endswith("/v1/completions")
    out = []
    for prompt in spec.prompts:
        body: dict[str, Any] = {"model": spec.model}
        if legacy:
            body["prompt"] = prompt
        else:
            body["messages"] = [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": prompt},
            ]
        if spec.stream:
            body["stream"] = True
            if spec.include_usage:
                body["stream_options"] = {"include_usage": True}
        if spec.max_tokens:
            body["max_tokens"] = spec.max_tokens
        payload = orjson.dumps(body)
        out.append(
            b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
            b"Accept: %s\r\nContent-Length: %d\r\n%s\r\n%s"
            % (
                target.path.encode(),
                host.encode(),
                target.port,
                b"text/event-stream" if spec.stream else b"application/json",
                len(payload),
                extra,
                payload,
            )
        )
    return out


class _Response:
    __slots__ = ("body", "first_event", "status")

    def __init__(self, status: int, body: bytes, first_event: float) -> None:
        self.status = status
        self.body = body
        self.first_event = first_event


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[_Response] | None = None
        self.chunks: list[bytes] = []
        self.first_event = 0.0
        self.keep = True
        self.closed = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionResetError("connection closed before the answer was complete"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionResetError(f"unparsable HTTP answer: {exc}"))
            self.close()

    def on_body(self, body: bytes) -> None:
        if not self.first_event and b"data:" in body:
            self.first_event = time.perf_counter()
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.keep = self.parser.should_keep_alive()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
            waiter.set_result(_Response(self.parser.get_status_code(), body, self.first_event))
        self._reset()

    def _reset(self) -> None:
        self.waiter = None
        self.chunks = []
        self.first_event = 0.0
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _fail(self, exc: BaseException) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self._reset()

    def _timed_out(self) -> None:
        self.timer = None
        self._fail(TimeoutError())
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def request(self, data: bytes, timeout_s: float) -> asyncio.Future[_Response]:
        assert self.transport is not None
        self.waiter = self.loop.create_future()
        self.timer = self.loop.call_later(timeout_s, self._timed_out)
        self.transport.write(data)
        return self.waiter


def check_body(body: bytes, stream: bool, include_usage: bool) -> bool:
    if stream:
        if not body.rstrip().endswith(b"data: [DONE]"):
            return False
        return not include_usage or b'"usage":{' in body
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and bool(doc.get("choices")) and isinstance(doc.get("usage"), dict)


async def run_load(spec: LoadSpec) -> dict[str, Any]:
    target = loopback_target(spec.url)
    requests = build_requests(spec, target)
    loop = asyncio.get_running_loop()
    tally = Tally()
    t_begin = time.perf_counter()
    t_measure = t_begin + spec.warmup_s
    t_end = t_measure + spec.duration_s
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    # One sequence shared by all connections: concurrent requests carry different prompts (a
    # per-connection sequence would put the same prompt in flight on many connections at once,
    # which a gateway that coalesces identical in-flight queries would serve once).
    sequence = itertools.count()

    async def worker(index: int) -> None:
        conn: _Connection | None = None
        try:
            while time.perf_counter() < t_end and tally.sent < spec.max_requests:
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
                        if time.perf_counter() >= t_measure:
                            tally.errors["connect"] += 1
                        await asyncio.sleep(0.05)
                        continue
                assert conn is not None
                data = requests[next(sequence) % len(requests)]
                tally.sent += 1
                t0 = time.perf_counter()
                try:
                    resp = await conn.request(data, spec.timeout_s)
                except TimeoutError:
                    kind: str | None = "timeout"
                except ConnectionError:
                    kind = "disconnect"
                else:
                    kind = None
                t1 = time.perf_counter()
                if t0 < t_measure or t1 > t_end:
                    continue  # warm-up, or finished after the window
                if kind is not None:
                    tally.errors[kind] += 1
                    continue
                tally.status_codes[resp.status] += 1
                tally.bytes_in += len(resp.body)
                if resp.status >= 400:
                    tally.errors["status"] += 1
                elif not check_body(resp.body, spec.stream, spec.include_usage):
                    tally.errors["bad_body"] += 1
                else:
                    tally.latencies_ms.append((t1 - t0) * 1000.0)
                    if spec.stream and resp.first_event:
                        tally.ttfts_ms.append((resp.first_event - t0) * 1000.0)
        finally:
            if conn is not None:
                conn.close()

    tasks = [loop.create_task(worker(w)) for w in range(spec.concurrency)]
    _, pending = await asyncio.wait(tasks, timeout=spec.warmup_s + spec.duration_s + spec.timeout_s + 5)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    window = min(spec.duration_s, max(1e-9, time.perf_counter() - t_measure))
    done = len(tally.latencies_ms)
    cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    out: dict[str, Any] = {
        "tool": "loadtest/loadgen.py",
        "url": spec.url,
        "mode": "stream" if spec.stream else "json",
        "concurrency": spec.concurrency,
        "duration_s": window,
        "warmup_s": spec.warmup_s,
        "requests": done,
        "sent": tally.sent,
        "rps": done / window,
        "count_bound_hit": tally.sent >= spec.max_requests,
        "errors": {
            k: tally.errors.get(k, 0) for k in ("connect", "timeout", "status", "bad_body", "disconnect")
        },
        "status_codes": {str(k): v for k, v in sorted(tally.status_codes.items())},
        "bytes_in": tally.bytes_in,
        "latency_ms": summarize(tally.latencies_ms),
        "loadgen_cpu_s": cpu_s,
        "loadgen_cpu_ms_per_request": 1000.0 * cpu_s / max(1, tally.sent),
        "prompts": len(spec.prompts),
    }
    if spec.stream:
        out["ttft_ms"] = summarize(tally.ttfts_ms)
    return out


def read_prompts(path: Path) -> tuple[str, ...]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LoadgenError(f"cannot read prompts file {path}: {exc.strerror}") from None
    prompts = tuple(line.strip() for line in lines if line.strip())
    if not prompts:
        raise LoadgenError(f"prompts file {path} has no non-empty line")
    return prompts


def parse_args(argv: Sequence[str] | None) -> tuple[LoadSpec, Path | None, bool]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="loopback base URL, /v1 URL or full completions URL")
    ap.add_argument("-c", "--concurrency", type=int, default=16)
    ap.add_argument("-d", "--duration", type=float, default=10.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before")
    ap.add_argument("--max-requests", type=int, default=1_000_000, help="stop after sending this many")
    ap.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")
    ap.add_argument("--stream", action="store_true")
    ap.add_argument(
        "--no-include-usage",
        dest="include_usage",
        action="store_false",
        help="streams: do not ask for (nor require) the usage chunk",
    )
    ap.add_argument("--model", default="auto")
    ap.add_argument("--max-tokens", type=int, default=None)
    ap.add_argument("--prompts", type=Path, help="file with one prompt per line, cycled")
    ap.add_argument("-H", "--header", action="append", default=[], help="'Name: value' (repeatable)")
    ap.add_argument("--out", type=Path, help="write the JSON here instead of stdout")
    ap.add_argument("--no-uvloop", action="store_true")
    a = ap.parse_args(argv)
    if not (0 < a.duration <= 3600 and 0 <= a.warmup <= 600 and 1 <= a.concurrency <= 4096):
        raise LoadgenError("--duration must be in (0, 3600], --warmup in [0, 600], -c in [1, 4096]")
    if a.max_requests < 1 or a.timeout <= 0:
        raise LoadgenError("--max-requests must be >= 1 and --timeout > 0")
    headers = []
    for h in a.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise LoadgenError(f"header {h!r}: expected 'Name: value'")
        headers.append((name.strip(), value.strip()))
    loopback_target(a.url)
    spec = LoadSpec(
        url=a.url,
        concurrency=a.concurrency,
        duration_s=a.duration,
        warmup_s=a.warmup,
        max_requests=a.max_requests,
        timeout_s=a.timeout,
        stream=a.stream,
        model=a.model,
        max_tokens=a.max_tokens,
        include_usage=a.include_usage,
        headers=tuple(headers),
        prompts=read_prompts(a.prompts) if a.prompts else DEFAULT_PROMPTS,
    )
    return spec, a.out, a.no_uvloop


def _run(spec: LoadSpec, no_uvloop: bool) -> dict[str, Any]:
    if not no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(run_load(spec))
    return asyncio.run(run_load(spec))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        spec, out, no_uvloop = parse_args(argv)
    except LoadgenError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    result = _run(spec, no_uvloop)
    text = json.dumps(result)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
