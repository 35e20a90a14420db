"""Classification metrics, calibration, and the report files ``gateway eval`` writes.

Everything is computed with numpy from true labels and predicted probabilities, so the same
code scores cross-validation folds during training and a held-out test set afterwards.
Calibration is the expected calibration error over 15 equal-width confidence bins.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ECE_BINS = 15


@dataclass(frozen=True)
class LabelScores:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    mean_confidence: float
    accuracy: float


@dataclass(frozen=True)
class ClassificationReport:
    labels: tuple[str, ...]
    n: int
    accuracy: float
    macro_f1: float
    per_label: tuple[LabelScores, ...]
    confusion: tuple[tuple[int, ...], ...]
    """``confusion[i][j]``: rows whose true label is ``labels[i]`` predicted as ``labels[j]``."""
    ece: float
    reliability: tuple[ReliabilityBin, ...]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["confusion"] = [list(row) for row in self.confusion]
        return data


def evaluate(
    y_true: Sequence[str], proba: npt.NDArray[np.floating[Any]], labels: Sequence[str]
) -> ClassificationReport:
    """Score ``(n, len(labels))`` probabilities against true label names."""
    labels = tuple(labels)
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({y for y in y_true if y not in index})
    if unknown:
        raise ValueError(f"labels {unknown} are not among the model's labels {list(labels)}")
    if proba.shape != (len(y_true), len(labels)):
        raise ValueError(f"probabilities have shape {proba.shape}, expected {(len(y_true), len(labels))}")
    true = np.array([index[y] for y in y_true], dtype=np.int64)
    pred = proba.argmax(axis=1) if len(true) else np.zeros(0, dtype=np.int64)
    k = len(labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (true, pred), 1)
    per_label = tuple(_label_scores(labels[i], confusion, i) for i in range(k))
    correct = pred == true
    confidence = proba.max(axis=1) if len(true) else np.zeros(0)
    bins = reliability_bins(confidence, correct)
    return ClassificationReport(
        labels=labels,
        n=len(true),
        accuracy=float(correct.mean()) if len(true) else 0.0,
        macro_f1=float(np.mean([s.f1 for s in per_label])),
        per_label=per_label,
        confusion=tuple(tuple(int(c) for c in row) for row in confusion),
        ece=expected_calibration_error(bins, len(true)),
        reliability=bins,
    )


def _label_scores(label: str, confusion: npt.NDArray[np.int64], i: int) -> LabelScores:
    tp = int(confusion[i, i])
    predicted = int(confusion[:, i].sum())
    support = int(confusion[i].sum())
    precision = tp / predicted if predicted else 0.0
    recall = tp / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return LabelScores(label, precision, recall, f1, support)


def reliability_bins(
    confidence: npt.NDArray[np.floating[Any]], correct: npt.NDArray[np.bool_], n_bins: int = ECE_BINS
) -> tuple[ReliabilityBin, ...]:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Right-closed bins, so a confidence of exactly 1.0 lands in the last one.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        mask = which == b
        count = int(mask.sum())
        out.append(
            ReliabilityBin(
                lower=float(edges[b]),
                upper=float(edges[b + 1]),
                count=count,
                mean_confidence=float(confidence[mask].mean()) if count else 0.0,
                accuracy=float(correct[mask].mean()) if count else 0.0,
            )
        )
    return tuple(out)


def expected_calibration_error(bins: Sequence[ReliabilityBin], n: int) -> float:
    if n == 0:
        return 0.0
    return float(sum(b.count / n * abs(b.accuracy - b.mean_confidence) for b in bins))


def format_summary(report: ClassificationReport) -> str:
    """A plain-text table: headline figures, per-label scores, confusion matrix."""
    width = max(9, *(len(label) for label in report.labels))
    lines = [
        f"examples {report.n}   accuracy {report.accuracy:.4f}   macro-F1 {report.macro_f1:.4f}   "
        f"ECE {report.ece:.4f}",
        "",
        f"{'label':<{width}}  precision  recall     f1  support",
    ]
    lines += [
        f"{s.label:<{width}}  {s.precision:9.3f}  {s.recall:6.3f}  {s.f1:5.3f}  {s.support:7d}"
        for s in report.per_label
    ]
    lines += [
        "",
        "confusion (rows: true, columns: predicted)",
        " " * width + "".join(f"  {x:>{width}}" for x in report.labels),
    ]
    lines += [
        f"{label:<{width}}" + "".join(f"  {c:>{width}d}" for c in row)
        for label, row in zip(report.labels, report.confusion, strict=True)
    ]
    return "\n".join(lines)


def write_report(
    report: ClassificationReport, out_dir: Path, *, extra: dict[str, Any] | None = None
) -> list[Path]:
    """Write ``report.json``, ``confusion_matrix.png`` and ``reliability.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = report.to_json() | (extra or {})
    paths = [out_dir / "report.json", out_dir / "confusion_matrix.png", out_dir / "reliability.png"]
    paths[0].write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    plot_confusion(report, paths[1])
    plot_reliability(report, paths[2])
    return paths


def plot_confusion(report: ClassificationReport, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # An Agg canvas on a bare Figure: no pyplot, no global backend switch, no display needed.
    fig = Figure(figsize=(1.2 * len(report.labels) + 2.5, 1.0 * len(report.labels) + 2.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    matrix = np.array(report.confusion, dtype=np.float64)
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax)
    ticks = range(len(report.labels))
    ax.set_xticks(ticks, report.labels, rotation=30, ha="right")
    ax.set_yticks(ticks, report.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"accuracy {report.accuracy:.3f}, macro-F1 {report.macro_f1:.3f}")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(
            j, i, f"{int(value)}", ha="center", va="center", color="white" if value > threshold else "black"
        )
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_reliability(report: ClassificationReport, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 5.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 1.0 / max(len(report.reliability), 1)
    filled = [b for b in report.reliability if b.count]
    ax.bar(
        [b.lower for b in filled],
        [b.accuracy for b in filled],
        width=width,
        align="edge",
        edgecolor="black",
        alpha=0.7,
        label="accuracy",
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ax.plot(
        [b.mean_confidence for b in filled],
        [b.accuracy for b in filled],
        marker="o",
        color="tab:red",
        label="mean confidence",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability, ECE {report.ece:.3f} ({len(report.reliability)} bins)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
