"""PNG charts of a decision-log summary: route mix, cost vs baseline, latency percentiles."""

from __future__ import annotations

from pathlib import Path

from gateway.report import Summary

CHARTS = ("route_mix.png", "cost_vs_baseline.png", "latency_by_route.png")


def write_charts(summary: Summary, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window; set here, not at import
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    routes = [r.route for r in summary.routes]
    x = list(range(len(routes)))
    written: list[Path] = []

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(routes, [r.count for r in summary.routes], color="#4c72b0")
    for i, r in enumerate(summary.routes):
        ax.annotate(f"{r.share:.0%}", (i, r.count), ha="center", va="bottom")
    ax.set_title(f"Route mix ({summary.requests} requests)")
    ax.set_ylabel("requests")
    written.append(_save(fig, out_dir / CHARTS[0]))

    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.4
    ax.bar([i - width / 2 for i in x], [r.cost_usd for r in summary.routes], width, label="cost")
    ax.bar([i + width / 2 for i in x], [r.baseline_cost_usd for r in summary.routes], width, label="baseline")
    ax.set_xticks(x, routes)
    ax.set_ylabel("USD")
    ax.set_title(f"Cost vs baseline (savings {summary.savings_usd:.4f} USD)")
    ax.legend()
    written.append(_save(fig, out_dir / CHARTS[1]))

    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.2
    series = (
        ("latency p50", [r.latency_p50_ms for r in summary.routes]),
        ("latency p99", [r.latency_p99_ms for r in summary.routes]),
        ("TTFT p50", [r.ttft_p50_ms or 0.0 for r in summary.routes]),
        ("TTFT p99", [r.ttft_p99_ms or 0.0 for r in summary.routes]),
    )
    for k, (label, values) in enumerate(series):
        ax.bar([i + (k - 1.5) * width for i in x], values, width, label=label)
    ax.set_xticks(x, routes)
    ax.set_ylabel("ms")
    ax.set_title("Latency and time to first token by route")
    ax.legend()
    written.append(_save(fig, out_dir / CHARTS[2]))
    return written


def _save(fig: object, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(path, dpi=100)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return path
