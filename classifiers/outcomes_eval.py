"""Held-out evaluation of cost/quality routing on an outcomes table (training time only).

* ``evaluate_two_backend``: train on one part of the table, sweep the threshold on the other,
  report APGR / CPT(50%) / CPT(80%) per head next to a random router and an oracle.
* ``evaluate_floor``: k-fold out-of-fold quality predictions per backend; for each quality floor,
  realised quality and cost of "cheapest backend predicted to reach the floor" next to
  always-strongest, always-cheapest, random, the best single backend for the floor and an oracle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from classifiers.outcomes_data import OutcomesError, OutcomesTable
from classifiers.outcomes_metrics import (
    apgr,
    choose_indices,
    cpt,
    exact_curve,
    floor_result,
    oracle_scores,
    random_router_apgr,
    threshold_for_strong_share,
    two_backend_report,
)
from classifiers.outcomes_train import (
    EncoderInfo,
    HeadConfig,
    good_enough,
    kfold,
    split_by_group,
    split_half,
    train_floor,
    train_two_backend,
)

Split = Literal["half", "group"]
Vectors = npt.NDArray[np.float32]
Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CurveSeries:
    """A router's call-performance curve, for plotting."""

    name: str
    strong_share: Array
    quality: Array


@dataclass(frozen=True)
class Evaluation:
    report: dict[str, Any]
    curves: tuple[CurveSeries, ...]


def evaluate_two_backend(
    table: OutcomesTable,
    vectors: Vectors,
    encoder: EncoderInfo,
    *,
    cheap: str,
    strong: str,
    heads: Sequence[HeadConfig],
    thresholds: Sequence[float],
    split: Split = "half",
    seed: int = 0,
    exclude: frozenset[str] = frozenset(),
) -> Evaluation:
    usable, _ = good_enough(table, cheap, strong)
    train_mask = (
        split_half(table.groups, seed) if split == "half" else split_by_group(table.groups, seed)
    ) & usable
    excluded = np.asarray([p in exclude for p in table.prompts], dtype=bool)
    eval_mask = ~train_mask & usable & ~excluded
    if train_mask.sum() < 2 or eval_mask.sum() < 2:
        raise OutcomesError(f"{table.source}: too few rows with both outcomes to split into train and eval")
    train_table, eval_table = table.subset(train_mask), table.subset(eval_mask)
    weak_q, strong_q = eval_table.column(cheap), eval_table.column(strong)
    routers: dict[str, Any] = {}
    curves: list[CurveSeries] = []
    kinds = [c.head for c in heads]
    for config in heads:
        name = config.head if kinds.count(config.head) == 1 else _label(config)
        router = train_two_backend(
            train_table, vectors[train_mask], encoder, cheap=cheap, strong=strong, config=config
        )
        score = router.heads.predict_many(vectors[eval_mask])[:, 0]
        report = two_backend_report(score, weak_q, strong_q, thresholds)
        body = asdict(report)
        body["head"] = asdict(config)
        body["threshold_for_strong_share"] = {
            f"{share:.1f}": threshold_for_strong_share(score, share)
            for share in (0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
        }
        routers[name] = body
        curve = exact_curve(score, weak_q, strong_q)
        curves.append(CurveSeries(name, curve.strong_share, curve.quality))
    oracle = exact_curve(oracle_scores(weak_q, strong_q), weak_q, strong_q)
    routers["oracle"] = {"apgr": apgr(oracle), "cpt50": cpt(oracle, 0.5), "cpt80": cpt(oracle, 0.8)}
    curves.append(CurveSeries("oracle", oracle.strong_share, oracle.quality))
    mean, low, high = random_router_apgr(weak_q, strong_q)
    routers["random"] = {
        "apgr": 0.5,
        "cpt50": 0.5,
        "cpt80": 0.8,
        "apgr_simulated_mean": mean,
        "apgr_simulated_95pct": [low, high],
    }
    report_dict: dict[str, Any] = {
        "mode": "two_backend",
        "source": table.source,
        "data_sha256": table.sha256,
        "encoder": asdict(encoder),
        "cheap": cheap,
        "strong": strong,
        "split": {
            "kind": split,
            "seed": seed,
            "train_rows": int(train_mask.sum()),
            "eval_rows": int(eval_mask.sum()),
            "excluded_from_eval": int((excluded & ~train_mask & usable).sum()),
        },
        "weak_quality": float(weak_q.mean()),
        "strong_quality": float(strong_q.mean()),
        "routers": routers,
    }
    return Evaluation(report_dict, tuple(curves))


def tune_two_backend(
    table: OutcomesTable,
    vectors: Vectors,
    encoder: EncoderInfo,
    *,
    cheap: str,
    strong: str,
    candidates: Sequence[HeadConfig],
    folds: int = 5,
    seed: int = 0,
) -> tuple[HeadConfig, dict[str, float]]:
    """The candidate with the best mean k-fold APGR on ``table`` (pass only training rows)."""
    usable, _ = good_enough(table, cheap, strong)
    rows = np.flatnonzero(usable)
    weak_q, strong_q = table.column(cheap), table.column(strong)
    scores: dict[str, float] = {}
    for config in candidates:
        values = []
        for test in kfold(rows.size, folds, seed):
            held = np.zeros(table.n, dtype=bool)
            held[rows[test]] = True
            fit = usable & ~held
            router = train_two_backend(
                table.subset(fit), vectors[fit], encoder, cheap=cheap, strong=strong, config=config
            )
            score = router.heads.predict_many(vectors[held])[:, 0]
            values.append(apgr(exact_curve(score, weak_q[held], strong_q[held])))
        scores[_label(config)] = float(np.mean(values))
    best = max(candidates, key=lambda c: scores[_label(c)])
    return best, scores


def _label(config: HeadConfig) -> str:
    if config.head == "knn":
        return f"knn(k={config.k},t={config.temperature:g})"
    return f"logistic(C={config.c:g})"


def out_of_fold(
    table: OutcomesTable,
    vectors: Vectors,
    encoder: EncoderInfo,
    config: HeadConfig,
    *,
    folds: int,
    seed: int = 0,
) -> Array:
    """(n, m) quality predictions, each row from heads that never saw it."""
    predicted = np.full(table.quality.shape, np.nan)
    for test in kfold(table.n, folds, seed):
        train = np.ones(table.n, dtype=bool)
        train[test] = False
        router = train_floor(table.subset(train), vectors[train], encoder, config)
        predicted[test] = router.heads.predict_many(vectors[test])
    return predicted


def impute_missing(quality: Array) -> Array:
    """Missing outcomes take their backend's mean outcome (only for scoring realised choices)."""
    means = np.nanmean(quality, axis=0)
    return np.where(np.isnan(quality), means[None, :], quality)


def evaluate_floor(
    table: OutcomesTable,
    vectors: Vectors,
    encoder: EncoderInfo,
    *,
    prices: Mapping[str, float],
    costs: Array,
    floors: Sequence[float],
    heads: Sequence[HeadConfig],
    folds: int = 5,
    seed: int = 0,
) -> Evaluation:
    """``prices``: the per-backend price the router ranks by; ``costs``: realised (n, m) cost per call."""
    names = table.backends
    missing = [b for b in names if b not in prices]
    if missing:
        raise OutcomesError(f"no price for backend(s): {', '.join(missing)}")
    price = np.asarray([float(prices[b]) for b in names])
    if costs.shape != table.quality.shape:
        raise OutcomesError("costs must have one value per prompt and backend")
    actual = impute_missing(table.quality)
    strongest = int(np.nanargmax(np.nanmean(table.quality, axis=0)))
    cheapest = min(range(len(names)), key=lambda j: (price[j], names[j]))
    rows = np.arange(table.n)
    results: dict[str, Any] = {}
    for config in heads:
        predicted = out_of_fold(table, vectors, encoder, config, folds=folds, seed=seed)
        per_floor = [
            asdict(floor_result(choose_indices(predicted, price, f, names), actual, costs, f, names))
            for f in floors
        ]
        known = ~np.isnan(table.quality)
        mae = float(np.abs(predicted - table.quality)[known].mean())
        results[config.head] = {"head": asdict(config), "oof_mae": mae, "floors": per_floor}
    static = _static_choices(table, price, floors, folds, seed)
    baselines: dict[str, Any] = {
        "always_strongest": asdict(floor_result(np.full(table.n, strongest), actual, costs, 0.0, names)),
        "always_cheapest": asdict(floor_result(np.full(table.n, cheapest), actual, costs, 0.0, names)),
        "random": {"mean_quality": float(actual.mean()), "mean_cost": float(costs.mean())},
        "best_single_for_floor": [
            asdict(floor_result(chosen, actual, costs, f, names))
            for f, chosen in zip(floors, static, strict=True)
        ],
        "oracle": [
            asdict(floor_result(choose_indices(actual, price, f, names), actual, costs, f, names))
            for f in floors
        ],
    }
    for f, entry in zip(floors, baselines["best_single_for_floor"], strict=True):
        entry["floor"] = f
    for name in ("always_strongest", "always_cheapest"):
        chosen = np.full(table.n, strongest if name == "always_strongest" else cheapest)
        baselines[name]["share_reaching_floor"] = {
            f"{f:g}": float((actual[rows, chosen] >= f).mean()) for f in floors
        }
    baselines["random"]["share_reaching_floor"] = {f"{f:g}": float((actual >= f).mean()) for f in floors}
    report: dict[str, Any] = {
        "mode": "floor",
        "source": table.source,
        "data_sha256": table.sha256,
        "encoder": asdict(encoder),
        "rows": table.n,
        "folds": folds,
        "seed": seed,
        "backends": list(names),
        "prices": {b: float(prices[b]) for b in names},
        "missing_outcomes": int(np.isnan(table.quality).sum()),
        "strongest": names[strongest],
        "cheapest": names[cheapest],
        "routers": results,
        "baselines": baselines,
    }
    return Evaluation(report, ())


def _static_choices(
    table: OutcomesTable, price: Array, floors: Sequence[float], folds: int, seed: int
) -> list[npt.NDArray[np.int64]]:
    """Per floor, per row: the cheapest backend whose mean quality on the other folds reaches the
    floor (else the best on average) - what a fixed, query-blind choice would do."""
    out = [np.zeros(table.n, dtype=np.int64) for _ in floors]
    for test in kfold(table.n, folds, seed):
        train = np.ones(table.n, dtype=bool)
        train[test] = False
        means = np.nanmean(table.quality[train], axis=0)[None, :]
        for i, f in enumerate(floors):
            out[i][test] = choose_indices(means, price, f, table.backends)[0]
    return out
