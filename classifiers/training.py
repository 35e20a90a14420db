"""Train a head on labelled examples: embed, cross-validate, then fit on everything.

Cross-validation is stratified k-fold: each fold's head is fitted on the other folds and
predicts the held-out rows; the out-of-fold predictions of all folds are scored together
(:func:`classifiers.evaluation.evaluate`), so every example is predicted exactly once by a
head that never saw it. The returned head is then fitted on all examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from classifiers.data import Example
from classifiers.encoders.base import Encoder
from classifiers.errors import DataError
from classifiers.evaluation import ClassificationReport, evaluate
from classifiers.heads import HEADS, Head, Matrix, Targets, fit_head


def embed(texts: Sequence[str], encoder: Encoder, *, batch_size: int = 64, progress: bool = True) -> Matrix:
    """Encode ``texts`` in batches, with a progress bar on stderr unless ``progress`` is false."""
    from tqdm import tqdm

    out = np.zeros((len(texts), encoder.dim), dtype=np.float64)
    with tqdm(total=len(texts), desc=f"embedding ({encoder.id})", unit="text", disable=not progress) as bar:
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            out[start : start + len(chunk)] = encoder.encode(chunk)
            bar.update(len(chunk))
    return out


def train(
    examples: Sequence[Example],
    encoder: Encoder,
    head: str = "logreg",
    cv_folds: int = 5,
    *,
    seed: int = 0,
    progress: bool = True,
    head_options: dict[str, Any] | None = None,
) -> tuple[Head, ClassificationReport | None]:
    """Return the head fitted on all ``examples`` and its cross-validated report.

    The report is ``None`` when ``cv_folds`` is 0.
    """
    if head not in HEADS:
        raise DataError(f"unknown head {head!r}; known heads: {', '.join(HEADS)}")
    labels = tuple(sorted({e.label for e in examples}))
    if len(labels) < 2:
        raise DataError(f"training needs at least two labels; found {list(labels)}")
    if cv_folds == 1 or cv_folds < 0:
        raise DataError(f"--cv must be 0 (no cross-validation) or at least 2, got {cv_folds}")
    index = {label: i for i, label in enumerate(labels)}
    y: Targets = np.array([index[e.label] for e in examples], dtype=np.int64)
    counts = np.bincount(y, minlength=len(labels))
    if cv_folds and counts.min() < cv_folds:
        scarce = labels[int(counts.argmin())]
        raise DataError(
            f"label {scarce!r} has {int(counts.min())} examples; {cv_folds}-fold cross-validation "
            f"needs at least {cv_folds} per label (lower --cv or add examples)"
        )
    X = embed([e.text for e in examples], encoder, progress=progress)
    options = dict(head_options or {})
    if head != "knn":
        options.setdefault("seed", seed)
    report = cross_validate(X, y, labels, head, cv_folds, seed=seed, options=options) if cv_folds else None
    return fit_head(head, X, y, labels, **options), report


def cross_validate(
    X: Matrix,
    y: Targets,
    labels: tuple[str, ...],
    head: str,
    folds: int,
    *,
    seed: int,
    options: dict[str, Any],
) -> ClassificationReport:
    from sklearn.model_selection import StratifiedKFold

    proba = np.zeros((len(y), len(labels)))
    for train_rows, test_rows in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        fold_head = fit_head(head, X[train_rows], y[train_rows], labels, **options)
        proba[test_rows] = fold_head.predict_proba(X[test_rows])
    return evaluate([labels[i] for i in y], proba, labels)
