"""Printing and writing cost/quality evaluations: a text summary, report.json, cost_quality.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.outcomes_eval import Evaluation

REPORT_JSON = "report.json"
PLOT_PNG = "cost_quality.png"


def format_summary(report: dict[str, Any]) -> str:
    if report["mode"] == "two_backend":
        return _two_backend_summary(report)
    return _floor_summary(report)


def _two_backend_summary(report: dict[str, Any]) -> str:
    split = report["split"]
    lines = [
        f"two-backend routing: cheap={report['cheap']} strong={report['strong']}",
        f"split={split['kind']} seed={split['seed']} train={split['train_rows']} eval={split['eval_rows']} "
        f"(excluded from eval: {split['excluded_from_eval']})",
        f"eval quality: always-cheap {report['weak_quality']:.4f}  "
        f"always-strong {report['strong_quality']:.4f}",
        f"{'router':<18} {'APGR':>7} {'APGR(10 bins)':>14} {'CPT(50%)':>9} {'CPT(80%)':>9}",
    ]
    for name, body in report["routers"].items():
        bins = body.get("apgr_quantile_bins")
        bins_text = f"{bins:.4f}" if bins is not None else "-"
        lines.append(
            f"{name:<18} {body['apgr']:>7.4f} {bins_text:>14} {body['cpt50']:>8.1%} {body['cpt80']:>8.1%}"
        )
    random = report["routers"]["random"]
    low, high = random["apgr_simulated_95pct"]
    lines.append(f"random router: APGR 0.5 expected; simulated 95% range {low:.4f}..{high:.4f}")
    return "\n".join(lines)


def _floor_summary(report: dict[str, Any]) -> str:
    base = report["baselines"]
    lines = [
        f"{len(report['backends'])}-backend floor routing on {report['rows']} prompts, "
        f"{report['folds']}-fold out-of-fold predictions",
        f"always-strongest ({report['strongest']}): quality {base['always_strongest']['mean_quality']:.3f} "
        f"cost {base['always_strongest']['mean_cost']:.6f}",
        f"always-cheapest ({report['cheapest']}): quality {base['always_cheapest']['mean_quality']:.3f} "
        f"cost {base['always_cheapest']['mean_cost']:.6f}",
        f"random: quality {base['random']['mean_quality']:.3f} cost {base['random']['mean_cost']:.6f}",
        f"{'router':<22} {'floor':>5} {'quality':>8} {'>=floor':>8} {'cost':>10}",
    ]
    rows: list[tuple[str, dict[str, Any]]] = []
    for name, body in report["routers"].items():
        rows += [(name, entry) for entry in body["floors"]]
    rows += [("best single for floor", entry) for entry in base["best_single_for_floor"]]
    rows += [("oracle", entry) for entry in base["oracle"]]
    for name, entry in rows:
        lines.append(
            f"{name:<22} {entry['floor']:>5g} {entry['mean_quality']:>8.3f} "
            f"{entry['share_reaching_floor']:>8.1%} {entry['mean_cost']:>10.6f}"
        )
    return "\n".join(lines)


def write_report(evaluation: Evaluation, out_dir: Path, extra: dict[str, Any] | None = None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    report = dict(evaluation.report)
    if extra:
        report.update(extra)
    report["curves"] = {c.name: _downsample(c.strong_share, c.quality) for c in evaluation.curves}
    json_path = out_dir / REPORT_JSON
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    png_path = out_dir / PLOT_PNG
    _plot(evaluation, png_path)
    return [json_path, png_path]


def _downsample(share: np.ndarray[Any, Any], quality: np.ndarray[Any, Any]) -> dict[str, list[float]]:
    grid = np.linspace(0.0, 1.0, 101)
    return {
        "strong_share": grid.round(4).tolist(),
        "quality": np.interp(grid, share, quality).round(6).tolist(),
    }


def _plot(evaluation: Evaluation, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = evaluation.report
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if report["mode"] == "two_backend":
        for curve in evaluation.curves:
            ax.plot(curve.strong_share * 100, curve.quality, label=curve.name)
        weak, strong = report["weak_quality"], report["strong_quality"]
        ax.plot([0, 100], [weak, strong], linestyle=":", color="grey", label="random (expected)")
        ax.axhline(weak, color="grey", linestyle="--", linewidth=0.8, label=f"{report['cheap']} only")
        ax.axhline(strong, color="red", linestyle="--", linewidth=0.8, label=f"{report['strong']} only")
        ax.set_xlabel("calls to the strong backend (%)")
        ax.set_ylabel("mean quality")
        ax.set_title("Cost/quality curve (held-out)")
    else:
        base = report["baselines"]
        for name, body in report["routers"].items():
            xs = [e["mean_cost"] for e in body["floors"]]
            ys = [e["mean_quality"] for e in body["floors"]]
            ax.plot(xs, ys, marker="o", label=f"router ({name})")
            for e in body["floors"]:
                ax.annotate(f"{e['floor']:g}", (e["mean_cost"], e["mean_quality"]), fontsize=7)
        static = base["best_single_for_floor"]
        ax.plot(
            [e["mean_cost"] for e in static],
            [e["mean_quality"] for e in static],
            marker="s",
            linestyle="none",
            label="best single backend for floor",
        )
        oracle = base["oracle"]
        ax.plot(
            [e["mean_cost"] for e in oracle],
            [e["mean_quality"] for e in oracle],
            marker="x",
            linestyle=":",
            label="oracle",
        )
        for name, marker in (("always_strongest", "^"), ("always_cheapest", "v"), ("random", "D")):
            ax.scatter([base[name]["mean_cost"]], [base[name]["mean_quality"]], marker=marker, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("mean cost per query")
        ax.set_ylabel("mean quality")
        ax.set_title("Quality vs cost (out-of-fold)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
