"""Summaries of decision logs (``gateway report``): pure functions over parsed lines.

A line that is not a JSON object with the fields a summary needs is skipped and counted, with
its file and line number kept for the first few (``Summary.skipped_examples``): a log cut off
mid-line by a crash, or a stray line of other output in a stdout log, must not hide the rest.
Files that cannot be read are an error (``ReportError``), and so is a set of logs with no
usable line at all.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

MAX_SKIPPED_EXAMPLES = 5


class ReportError(ValueError):
    """Logs that cannot be summarised, with a message for the user."""


@dataclass(frozen=True, slots=True)
class Entry:
    """The fields of one decision-log line that the report reads."""

    route: str
    backend: str
    status: int
    latency_ms: float
    ttft_ms: float | None
    cost_usd: float
    baseline_cost_usd: float
    usage_estimated: bool
    fallbacks: tuple[tuple[str, str], ...]  # (backend, cause)
    time: str


@dataclass(frozen=True, slots=True)
class RouteSummary:
    route: str
    count: int
    share: float
    cost_usd: float
    baseline_cost_usd: float
    savings_usd: float
    latency_p50_ms: float
    latency_p99_ms: float
    ttft_p50_ms: float | None
    ttft_p99_ms: float | None


@dataclass(frozen=True, slots=True)
class Summary:
    files: tuple[str, ...]
    requests: int
    skipped: int
    skipped_examples: tuple[str, ...]
    first_time: str
    last_time: str
    routes: tuple[RouteSummary, ...]
    cost_usd: float
    baseline_cost_usd: float
    savings_usd: float
    fallbacks: tuple[tuple[str, str, int], ...]  # (backend, cause, count)
    error_statuses: tuple[tuple[int, int], ...]  # (status, count)
    usage_estimated: int
    usage_estimated_share: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": list(self.files),
            "requests": self.requests,
            "skipped_lines": self.skipped,
            "skipped_examples": list(self.skipped_examples),
            "first_time": self.first_time,
            "last_time": self.last_time,
            "cost_usd": self.cost_usd,
            "baseline_cost_usd": self.baseline_cost_usd,
            "savings_usd": self.savings_usd,
            "routes": [
                {
                    "route": r.route,
                    "count": r.count,
                    "share": r.share,
                    "cost_usd": r.cost_usd,
                    "baseline_cost_usd": r.baseline_cost_usd,
                    "savings_usd": r.savings_usd,
                    "latency_p50_ms": r.latency_p50_ms,
                    "latency_p99_ms": r.latency_p99_ms,
                    "ttft_p50_ms": r.ttft_p50_ms,
                    "ttft_p99_ms": r.ttft_p99_ms,
                }
                for r in self.routes
            ],
            "fallbacks": [{"backend": b, "cause": c, "count": n} for b, c, n in self.fallbacks],
            "error_statuses": {str(s): n for s, n in self.error_statuses},
            "usage_estimated": self.usage_estimated,
            "usage_estimated_share": self.usage_estimated_share,
        }


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"field {name!r} is not a number")
    return float(value)


def parse_entry(data: object) -> Entry:
    """One parsed JSON line -> Entry; ValueError naming the first bad field."""
    if not isinstance(data, Mapping):
        raise ValueError("not a JSON object")
    for name in ("route", "backend"):
        if not isinstance(data.get(name), str):
            raise ValueError(f"field {name!r} is missing or not a string")
    status = data.get("status")
    if isinstance(status, bool) or not isinstance(status, int):
        raise ValueError("field 'status' is missing or not an integer")
    ttft = data.get("ttft_ms")
    raw_fallbacks = data.get("fallbacks") or []
    if not isinstance(raw_fallbacks, list):
        raise ValueError("field 'fallbacks' is not a list")
    fallbacks = tuple(
        (str(f.get("backend")), str(f.get("cause"))) for f in raw_fallbacks if isinstance(f, Mapping)
    )
    return Entry(
        route=data["route"],
        backend=data["backend"],
        status=status,
        latency_ms=_number(data.get("latency_ms"), "latency_ms"),
        ttft_ms=None if ttft is None else _number(ttft, "ttft_ms"),
        cost_usd=_number(data.get("cost_usd", 0.0), "cost_usd"),
        baseline_cost_usd=_number(data.get("baseline_cost_usd", 0.0), "baseline_cost_usd"),
        usage_estimated=bool(data.get("usage_estimated", False)),
        fallbacks=fallbacks,
        time=str(data.get("time", "")),
    )


@dataclass(frozen=True, slots=True)
class Parsed:
    entries: tuple[Entry, ...]
    skipped: int
    skipped_examples: tuple[str, ...]


def read_logs(paths: Sequence[Path]) -> Parsed:
    entries: list[Entry] = []
    skipped = 0
    examples: list[str] = []
    for path in paths:
        for number, line in _lines(path):
            if not line.strip():
                continue
            try:
                entries.append(parse_entry(orjson.loads(line)))
            except (orjson.JSONDecodeError, ValueError) as exc:
                skipped += 1
                if len(examples) < MAX_SKIPPED_EXAMPLES:
                    reason = "not valid JSON" if isinstance(exc, orjson.JSONDecodeError) else str(exc)
                    examples.append(f"{path}:{number}: {reason}")
    return Parsed(tuple(entries), skipped, tuple(examples))


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        with path.open("rb") as f:
            yield from enumerate(f, start=1)
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror or exc}") from None


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of an ascending, non-empty sequence."""
    rank = max(math.ceil(p / 100 * len(sorted_values)), 1)
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarise(paths: Sequence[Path]) -> Summary:
    parsed = read_logs(paths)
    if not parsed.entries:
        detail = (
            f"; {parsed.skipped} unusable lines, e.g. {parsed.skipped_examples[0]}" if parsed.skipped else ""
        )
        raise ReportError(f"no decision-log lines found in {', '.join(map(str, paths))}{detail}")
    return build_summary(parsed, tuple(str(p) for p in paths))


def build_summary(parsed: Parsed, files: tuple[str, ...]) -> Summary:
    entries = parsed.entries
    total = len(entries)
    by_route: dict[str, list[Entry]] = {}
    for e in entries:
        by_route.setdefault(e.route, []).append(e)
    routes = tuple(
        _route_summary(route, group, total)
        for route, group in sorted(by_route.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    )
    fallbacks: Counter[tuple[str, str]] = Counter(f for e in entries for f in e.fallbacks)
    errors: Counter[int] = Counter(e.status for e in entries if e.status >= 400)
    estimated = sum(1 for e in entries if e.usage_estimated)
    times = sorted(e.time for e in entries if e.time)
    cost = sum(e.cost_usd for e in entries)
    baseline = sum(e.baseline_cost_usd for e in entries)
    return Summary(
        files=files,
        requests=total,
        skipped=parsed.skipped,
        skipped_examples=parsed.skipped_examples,
        first_time=times[0] if times else "",
        last_time=times[-1] if times else "",
        routes=routes,
        cost_usd=cost,
        baseline_cost_usd=baseline,
        savings_usd=baseline - cost,
        fallbacks=tuple((b, c, n) for (b, c), n in sorted(fallbacks.items(), key=lambda kv: (-kv[1], kv[0]))),
        error_statuses=tuple(sorted(errors.items())),
        usage_estimated=estimated,
        usage_estimated_share=estimated / total,
    )


def _route_summary(route: str, group: Iterable[Entry], total: int) -> RouteSummary:
    items = list(group)
    latencies = sorted(e.latency_ms for e in items)
    ttfts = sorted(e.ttft_ms for e in items if e.ttft_ms is not None)
    cost = sum(e.cost_usd for e in items)
    baseline = sum(e.baseline_cost_usd for e in items)
    return RouteSummary(
        route=route,
        count=len(items),
        share=len(items) / total,
        cost_usd=cost,
        baseline_cost_usd=baseline,
        savings_usd=baseline - cost,
        latency_p50_ms=percentile(latencies, 50),
        latency_p99_ms=percentile(latencies, 99),
        ttft_p50_ms=percentile(ttfts, 50) if ttfts else None,
        ttft_p99_ms=percentile(ttfts, 99) if ttfts else None,
    )


def render_text(summary: Summary) -> str:
    """Plain aligned tables for the terminal."""
    out: list[str] = []
    span = f" from {summary.first_time} to {summary.last_time}" if summary.first_time else ""
    out.append(f"{summary.requests} requests{span} in {len(summary.files)} file(s)")
    if summary.skipped:
        out.append(f"skipped {summary.skipped} unusable line(s):")
        out.extend(f"  {example}" for example in summary.skipped_examples)
    out.append("")
    rows = [
        (
            r.route,
            str(r.count),
            f"{r.share:.1%}",
            f"{r.cost_usd:.6f}",
            f"{r.baseline_cost_usd:.6f}",
            f"{r.savings_usd:.6f}",
            f"{r.latency_p50_ms:.1f}",
            f"{r.latency_p99_ms:.1f}",
            _ms(r.ttft_p50_ms),
            _ms(r.ttft_p99_ms),
        )
        for r in summary.routes
    ]
    rows.append(
        (
            "total",
            str(summary.requests),
            "100.0%",
            f"{summary.cost_usd:.6f}",
            f"{summary.baseline_cost_usd:.6f}",
            f"{summary.savings_usd:.6f}",
            "",
            "",
            "",
            "",
        )
    )
    header = (
        "route", "requests", "share", "cost USD", "baseline USD", "savings USD",
        "p50 ms", "p99 ms", "TTFT p50 ms", "TTFT p99 ms",
    )  # fmt: skip
    out.extend(_table(header, rows))
    out.append("")
    if summary.fallbacks:
        out.extend(
            _table(("fallback from", "cause", "count"), [(b, c, str(n)) for b, c, n in summary.fallbacks])
        )
    else:
        out.append("no fallbacks")
    out.append("")
    if summary.error_statuses:
        out.extend(_table(("error status", "count"), [(str(s), str(n)) for s, n in summary.error_statuses]))
    else:
        out.append("no error statuses")
    out.append("")
    out.append(
        f"usage estimated (no upstream usage): {summary.usage_estimated} of {summary.requests} "
        f"({summary.usage_estimated_share:.1%})"
    )
    return "\n".join(out)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join((first, *rest)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]
