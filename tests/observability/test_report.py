"""``gateway report``: summaries of a generated decision log, charts, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from gateway.cli import main
from gateway.decision_log import record_fields
from gateway.report import ReportError, percentile, read_logs, render_text, summarise
from gateway.types import Attempt, RequestRecord


def record(
    i: int, route: str, backend: str, *, status: int = 200, latency_s: float = 0.1, **extra: object
) -> RequestRecord:
    values: dict[str, object] = {
        "request_id": f"r{i}",
        "started_unix": 1_700_000_000 + i,
        "route": route,
        "backend": backend,
        "reason": "classifier",
        "confidence": 0.8,
        "status": status,
        "stream": False,
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "usage_estimated": False,
        "cost_usd": 0.001,
        "baseline_cost_usd": 0.004,
        "duration_s": latency_s,
        "upstream_s": latency_s * 0.9,
        "ttft_s": latency_s / 2,
        "attempts": (Attempt(backend, None, status),),
        "policy_version": "1",
    }
    values.update(extra)
    return RequestRecord(**values)  # type: ignore[arg-type]


def write_log(path: Path) -> Path:
    records = [record(i, "small", "small-sim", latency_s=(i + 1) / 1000) for i in range(60)]
    records += [
        record(100 + i, "frontier", "frontier-sim", cost_usd=0.004, usage_estimated=i < 10) for i in range(30)
    ]
    records += [
        record(
            200 + i,
            "frontier",
            "frontier-sim",
            attempts=(Attempt("broken", "status_5xx", 503), Attempt("frontier-sim", None, 200)),
            cost_usd=0.004,
        )
        for i in range(5)
    ]
    records += [
        record(300 + i, "none", "none", status=400, cost_usd=0.0, baseline_cost_usd=0.0, ttft_s=None)
        for i in range(4)
    ]
    records += [record(400, "small", "small-sim", status=502, cost_usd=0.0, baseline_cost_usd=0.0)]
    lines = [orjson.dumps(record_fields(r)) for r in records]
    lines.insert(10, b'{"route": "small", "backend": "x", "status": "ok"}')  # wrong type
    lines.insert(20, b"this is not json")
    lines.append(b'{"request_id": "cut off mid-li')  # a crash mid-write
    path.write_bytes(b"\n".join(lines) + b"\n\n")
    return path


def test_summary_of_a_generated_log(tmp_path: Path) -> None:
    summary = summarise([write_log(tmp_path / "decisions.jsonl")])
    assert summary.requests == 100
    assert summary.skipped == 3
    assert summary.skipped_examples[0].endswith(
        "decisions.jsonl:11: field 'status' is missing or not an integer"
    )
    assert summary.skipped_examples[1].endswith("decisions.jsonl:21: not valid JSON")
    routes = {r.route: r for r in summary.routes}
    assert [r.route for r in summary.routes] == ["small", "frontier", "none"]  # by count
    assert (routes["small"].count, routes["frontier"].count, routes["none"].count) == (61, 35, 4)
    assert routes["small"].share == pytest.approx(0.61)
    assert routes["small"].cost_usd == pytest.approx(60 * 0.001)
    assert routes["small"].savings_usd == pytest.approx(60 * 0.003)
    assert routes["frontier"].savings_usd == pytest.approx(0.0)
    assert summary.savings_usd == pytest.approx(60 * 0.003)
    assert routes["small"].latency_p50_ms == pytest.approx(31.0)  # 1..60 ms and one 100 ms
    assert routes["small"].latency_p99_ms == pytest.approx(100.0)
    assert routes["small"].ttft_p50_ms == pytest.approx(15.5)
    assert routes["none"].ttft_p50_ms is None
    assert summary.fallbacks == (("broken", "status_5xx", 5),)
    assert summary.error_statuses == ((400, 4), (502, 1))
    assert summary.usage_estimated == 10
    assert summary.usage_estimated_share == pytest.approx(0.1)
    text = render_text(summary)
    assert "small" in text and "61.0%" in text and "skipped 3 unusable line(s)" in text
    assert "broken" in text and "status_5xx" in text


def test_several_files_are_read_together(tmp_path: Path) -> None:
    a = tmp_path / "decisions.1.jsonl"
    b = tmp_path / "decisions.2.jsonl"
    a.write_bytes(orjson.dumps(record_fields(record(1, "small", "s"))) + b"\n")
    b.write_bytes(orjson.dumps(record_fields(record(2, "rag", "r"))) + b"\n")
    summary = summarise([a, b])
    assert summary.requests == 2 and {r.route for r in summary.routes} == {"small", "rag"}


def test_command_writes_table_json_and_charts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = write_log(tmp_path / "decisions.jsonl")
    out = tmp_path / "report"
    assert main(["report", str(log), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "route" in printed.out and "savings USD" in printed.out
    for name in ("route_mix.png", "cost_vs_baseline.png", "latency_by_route.png"):
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000
    assert json.loads((out / "summary.json").read_text())["requests"] == 100


def test_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
    junk = tmp_path / "junk.jsonl"
    junk.write_text("hello\nworld\n")
    assert main(["report", str(junk)]) == 2
    err = capsys.readouterr().err
    assert "no decision-log lines" in err and "junk.jsonl:1: not valid JSON" in err
    with pytest.raises(ReportError):
        read_logs([tmp_path])  # a directory


def test_percentile_nearest_rank() -> None:
    xs = [float(x) for x in range(1, 101)]
    assert (percentile(xs, 50), percentile(xs, 99), percentile(xs, 100)) == (50.0, 99.0, 100.0)
    assert percentile([7.0], 99) == 7.0
