"""``gateway report LOG [LOG...] [--out DIR]``: summarise decision logs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson


def add_report_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser(
        "report",
        help="summarise decision logs: route mix, cost and savings, latency, fallbacks, errors",
        description="Summarise decision logs (gateway serve --decision-log FILE). Unusable lines "
        "are skipped and counted; the first few are named. With --out, also writes summary.json "
        "and PNG charts (route mix, cost vs baseline, latency by route).",
    )
    report.add_argument("logs", nargs="+", type=Path, metavar="LOG")
    report.add_argument("--out", type=Path, metavar="DIR", help="write summary.json and PNG charts here")
    report.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from gateway.report import ReportError, render_text, summarise

    try:
        summary = summarise(args.logs)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render_text(summary))
    if args.out is not None:
        from gateway.report_charts import write_charts

        try:
            written = write_charts(summary, args.out)
            summary_path = args.out / "summary.json"
            summary_path.write_bytes(orjson.dumps(summary.as_dict(), option=orjson.OPT_INDENT_2))
        except OSError as exc:
            print(f"error: cannot write to {args.out}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        for path in (summary_path, *written):
            print(f"wrote {path}", file=sys.stderr)
    return 0
