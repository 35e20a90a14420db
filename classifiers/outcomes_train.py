"""Training cost/quality heads on embeddings of an outcomes table (scikit-learn only here).

The trained result is a ``CostQualityRouter`` holding plain numpy arrays; nothing from
scikit-learn survives into serving.

* two_backend: label = "the cheap backend is good enough" = quality(cheap) >= quality(strong)
  (for correctness data: the strong backend does not answer correctly where the cheap one fails).
  Head ``logistic`` (logistic regression) or ``knn`` (similarity-weighted neighbours).
* floor: one head per backend predicting its quality: ``logistic`` (p(correct), correctness data),
  ``ridge`` (score regression) or ``knn``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from classifiers.outcomes_data import OutcomesError, OutcomesTable
from classifiers.outcomes_router import CostQualityRouter, Heads, KnnHeads, LinearHeads, Mode

HeadType = Literal["logistic", "ridge", "knn"]
HEAD_TYPES: tuple[HeadType, ...] = ("logistic", "ridge", "knn")
Vectors = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class EncoderInfo:
    id: str
    space: str
    dim: int


@dataclass(frozen=True)
class HeadConfig:
    head: HeadType = "logistic"
    c: float = 1.0  # inverse L2 strength of logistic regression
    ridge_alpha: float = 1.0
    k: int = 50
    temperature: float = 0.05


def pick_pair(table: OutcomesTable, cheap: str | None, strong: str | None) -> tuple[str, str]:
    """The (cheap, strong) pair; defaults: a two-column table's first and second backend."""
    if cheap is None and strong is None:
        if len(table.backends) != 2:
            raise OutcomesError(
                f"{table.source}: {len(table.backends)} backends; "
                "name --cheap and --strong for two-backend mode"
            )
        first, second = table.backends
        means = np.nanmean(table.quality, axis=0)
        return (first, second) if means[0] <= means[1] else (second, first)
    if cheap is None or strong is None:
        raise OutcomesError("give both --cheap and --strong, or neither")
    table.column(cheap)
    table.column(strong)
    if cheap == strong:
        raise OutcomesError("--cheap and --strong must differ")
    return cheap, strong


def good_enough(table: OutcomesTable, cheap: str, strong: str) -> tuple[BoolArray, npt.NDArray[np.float64]]:
    """(rows with both outcomes, label 1.0 where the cheap backend is at least as good)."""
    q_cheap, q_strong = table.column(cheap), table.column(strong)
    usable = ~(np.isnan(q_cheap) | np.isnan(q_strong))
    return usable, (q_cheap >= q_strong).astype(np.float64)


def train_two_backend(
    table: OutcomesTable,
    vectors: Vectors,
    encoder: EncoderInfo,
    *,
    cheap: str,
    strong: str,
    config: HeadConfig = HeadConfig(),
) -> CostQualityRouter:
    _check_vectors(table, vectors, encoder)
    usable, label = good_enough(table, cheap, strong)
    if config.head == "ridge":
        raise OutcomesError("two-backend mode uses a 'logistic' or 'knn' head")
    heads = _fit(vectors[usable], label[usable][:, None], config, classify=True)
    return CostQualityRouter(
        mode="two_backend",
        backends=(cheap,),
        heads=heads,
        encoder_id=encoder.id,
        encoder_space=encoder.space,
        dim=encoder.dim,
        cheap=cheap,
        strong=strong,
    )


def train_floor(
    table: OutcomesTable, vectors: Vectors, encoder: EncoderInfo, config: HeadConfig
) -> CostQualityRouter:
    _check_vectors(table, vectors, encoder)
    if config.head == "logistic" and not table.binary:
        raise OutcomesError(f"{table.source}: scores are not true/false; use a 'ridge' or 'knn' head")
    heads = _fit(vectors, table.quality, config, classify=config.head == "logistic")
    return CostQualityRouter(
        mode="floor",
        backends=table.backends,
        heads=heads,
        encoder_id=encoder.id,
        encoder_space=encoder.space,
        dim=encoder.dim,
    )


def train(
    mode: Mode,
    table: OutcomesTable,
    vectors: Vectors,
    encoder: EncoderInfo,
    *,
    config: HeadConfig,
    cheap: str | None = None,
    strong: str | None = None,
) -> CostQualityRouter:
    if mode == "two_backend":
        pair = pick_pair(table, cheap, strong)
        return train_two_backend(table, vectors, encoder, cheap=pair[0], strong=pair[1], config=config)
    return train_floor(table, vectors, encoder, config)


def _fit(vectors: Vectors, targets: npt.NDArray[np.float64], config: HeadConfig, classify: bool) -> Heads:
    """One head per target column; NaN targets are left out of that column's fit."""
    x = np.asarray(vectors, dtype=np.float32)
    if config.head == "knn":
        prior = np.asarray(np.nanmean(targets, axis=0), dtype=np.float32)
        return KnnHeads(x, targets.astype(np.float32), config.k, config.temperature, prior)
    weights, biases = [], []
    for column in targets.T:
        known = ~np.isnan(column)
        if known.sum() < 2:
            raise OutcomesError("a backend has fewer than two outcomes to learn from")
        if classify:
            w, b = _logistic(x[known], column[known], config.c)
        else:
            w, b = _ridge(x[known], column[known], config.ridge_alpha)
        weights.append(w)
        biases.append(b)
    return LinearHeads(
        np.asarray(weights, dtype=np.float32), np.asarray(biases, dtype=np.float32), sigmoid=classify
    )


def _logistic(x: Vectors, y: npt.NDArray[np.float64], c: float) -> tuple[npt.NDArray[np.float64], float]:
    labels = y.astype(np.int64)
    if np.unique(labels).size < 2:
        # Every training query has the same outcome: a constant head says so.
        p = float(np.clip(labels.mean(), 1e-3, 1 - 1e-3))
        return np.zeros(x.shape[1]), float(np.log(p / (1 - p)))
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(x, labels)
    return np.asarray(model.coef_[0], dtype=np.float64), float(model.intercept_[0])


def _ridge(x: Vectors, y: npt.NDArray[np.float64], alpha: float) -> tuple[npt.NDArray[np.float64], float]:
    x64 = x.astype(np.float64)
    mean_x, mean_y = x64.mean(axis=0), float(y.mean())
    centred = x64 - mean_x
    gram = centred.T @ centred + alpha * np.eye(x.shape[1])
    w = np.linalg.solve(gram, centred.T @ (y - mean_y))
    return w, mean_y - float(mean_x @ w)


def _check_vectors(table: OutcomesTable, vectors: Vectors, encoder: EncoderInfo) -> None:
    if vectors.shape != (table.n, encoder.dim):
        raise OutcomesError(f"vectors {vectors.shape} do not match {table.n} prompts x dim {encoder.dim}")


# ---- splits ---------------------------------------------------------------------------------------


def split_half(groups: tuple[str, ...], seed: int = 0) -> BoolArray:
    """A train mask holding half of each group's rows (seeded); the rest is the held-out half."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(groups)
    train = np.zeros(len(groups), dtype=bool)
    for group in sorted(set(groups)):
        rows = np.flatnonzero(labels == group)
        rng.shuffle(rows)
        train[rows[: len(rows) // 2]] = True
    return train


def split_by_group(groups: tuple[str, ...], seed: int = 0) -> BoolArray:
    """A train mask holding every row of a seeded half of the groups (unseen-subject evaluation)."""
    names = sorted(set(groups))
    if len(names) < 2:
        raise OutcomesError("a split by group needs at least two groups (files)")
    rng = np.random.default_rng(seed)
    chosen = set(rng.permutation(names)[: len(names) // 2].tolist())
    return np.asarray([g in chosen for g in groups], dtype=bool)


def kfold(n: int, folds: int, seed: int = 0) -> list[npt.NDArray[np.int64]]:
    """Seeded partition of ``range(n)`` into ``folds`` test folds."""
    if not 2 <= folds <= n:
        raise OutcomesError(f"k-fold needs 2 <= folds <= rows (folds={folds}, rows={n})")
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part).astype(np.int64) for part in np.array_split(order, folds)]
