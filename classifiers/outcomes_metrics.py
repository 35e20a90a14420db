"""Cost/quality metrics for routing between backends, following RouteLLM (Ong et al., 2024).

Two-backend mode. A router gives each query a score ``p`` = p(cheap backend is good enough); with a
threshold ``t`` it routes to the cheap backend when ``p >= t`` and to the strong one otherwise.
Sweeping ``t`` traces the call-performance curve: share of calls sent to the strong backend
(``c``, 0..1) against the mean quality of the routed answers. With ``q_w``/``q_s`` the mean quality
of always-cheap/always-strong:

* PGR(c)  = (quality(c) - q_w) / (q_s - q_w)   (performance gap recovered)
* APGR    = integral of PGR over c from 0 to 1 (random router: 0.5; a perfect router: above 0.5)
* CPT(x)  = smallest c with PGR(c) >= x         (random router: x)

``exact_curve`` uses every distinct threshold; between two achievable points the curve is linear,
which is what a threshold that splits a group of tied scores at random achieves, so the area and
CPT are exact expectations. ``apgr_quantile_bins`` reproduces RouteLLM's own estimate (thresholds
at the 11 deciles of the scores, trapezoid rule) for a like-for-like comparison with its paper.

N-backend mode: ``choose_indices`` picks, per query, the cheapest backend whose predicted quality
reaches a floor (or, if none does, the one with the highest prediction) - the same rule as
``CostQualityRouter.choose``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from classifiers.outcomes_data import OutcomesError

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Curve:
    """Achievable points of the call-performance curve, strong share ascending from 0 to 1."""

    strong_share: Array
    quality: Array
    pgr: Array
    weak_quality: float
    strong_quality: float


@dataclass(frozen=True)
class SweepPoint:
    threshold: float
    strong_share: float
    quality: float
    pgr: float


@dataclass(frozen=True)
class TwoBackendReport:
    n: int
    weak_quality: float
    strong_quality: float
    apgr: float
    apgr_quantile_bins: float
    cpt50: float
    cpt80: float
    sweep: tuple[SweepPoint, ...]


def _check_pair(score: Array, weak: Array, strong: Array) -> tuple[Array, Array, Array]:
    s, w, t = (np.asarray(a, dtype=np.float64) for a in (score, weak, strong))
    if not (s.ndim == w.ndim == t.ndim == 1 and s.shape == w.shape == t.shape):
        raise OutcomesError("scores and outcomes must be 1-D arrays of equal length")
    if s.size == 0:
        raise OutcomesError("no queries to evaluate")
    if np.isnan(s).any() or np.isnan(w).any() or np.isnan(t).any():
        raise OutcomesError("scores and outcomes must not contain NaN (drop rows without an outcome)")
    if np.isclose(t.mean(), w.mean()):
        raise OutcomesError("the two backends have the same mean quality: there is no gap to recover")
    return s, w, t


def exact_curve(score: Array, weak: Array, strong: Array) -> Curve:
    """All achievable (strong share, quality) points for thresholds on ``score``."""
    s, w, t = _check_pair(score, weak, strong)
    n = s.size
    order = np.argsort(s, kind="stable")  # lowest p(cheap good enough) goes to the strong backend first
    gain = (t - w)[order]
    sorted_scores = s[order]
    # Only boundaries between distinct scores are reachable with a threshold.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    counts = np.concatenate(([0], boundaries, [n]))
    cumulative = np.concatenate(([0.0], np.cumsum(gain)))
    q_w, q_s = float(w.mean()), float(t.mean())
    quality = (w.sum() + cumulative[counts]) / n
    return Curve(
        strong_share=counts / n,
        quality=quality,
        pgr=(quality - q_w) / (q_s - q_w),
        weak_quality=q_w,
        strong_quality=q_s,
    )


def apgr(curve: Curve) -> float:
    """Area under PGR over strong share 0..1 (trapezoid over the exact points)."""
    x, y = curve.strong_share, curve.pgr
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def cpt(curve: Curve, target: float) -> float:
    """Smallest strong share at which PGR reaches ``target`` (linear between achievable points)."""
    x, y = curve.strong_share, curve.pgr
    hits = np.flatnonzero(y >= target - 1e-12)
    first = int(hits[0])
    if first == 0:
        return float(x[0])
    x0, x1, y0, y1 = x[first - 1], x[first], y[first - 1], y[first]
    return float(x0 + (x1 - x0) * (target - y0) / (y1 - y0))


def apgr_quantile_bins(score: Array, weak: Array, strong: Array, bins: int = 10) -> float:
    """RouteLLM's estimate: thresholds at the score quantiles, trapezoid over the resulting points."""
    s, w, t = _check_pair(score, weak, strong)
    win = 1.0 - s  # RouteLLM thresholds p(strong wins); the strong backend gets win >= threshold
    thresholds = np.quantile(win, np.linspace(0.0, 1.0, bins + 1))
    shares, qualities = [], []
    for i, threshold in enumerate(thresholds):
        to_strong = win >= threshold if i != len(thresholds) - 1 else win > threshold
        shares.append(float(to_strong.mean()))
        qualities.append(float(np.where(to_strong, t, w).mean()))
    order = np.argsort(shares, kind="stable")
    x, y = np.asarray(shares)[order], np.asarray(qualities)[order]
    q_w, q_s = float(w.mean()), float(t.mean())
    area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))
    width = float(x[-1] - x[0])
    return (area - q_w * width) / ((q_s - q_w) * width)


def sweep(score: Array, weak: Array, strong: Array, thresholds: Sequence[float]) -> tuple[SweepPoint, ...]:
    """Route to the cheap backend when ``score >= threshold``; one point per threshold."""
    s, w, t = _check_pair(score, weak, strong)
    q_w, q_s = float(w.mean()), float(t.mean())
    points = []
    for threshold in thresholds:
        to_strong = s < threshold
        quality = float(np.where(to_strong, t, w).mean())
        points.append(
            SweepPoint(float(threshold), float(to_strong.mean()), quality, (quality - q_w) / (q_s - q_w))
        )
    return tuple(points)


def threshold_grid(points: int) -> tuple[float, ...]:
    if points < 2:
        raise OutcomesError("--threshold-grid must be at least 2")
    return tuple(float(x) for x in np.linspace(0.0, 1.0, points))


def threshold_for_strong_share(score: Array, share: float) -> float:
    """A threshold sending about ``share`` of these queries to the strong backend (calibration)."""
    if not 0.0 <= share <= 1.0:
        raise OutcomesError("strong share must be within 0..1")
    return float(np.quantile(np.asarray(score, dtype=np.float64), share))


def two_backend_report(
    score: Array, weak: Array, strong: Array, thresholds: Sequence[float]
) -> TwoBackendReport:
    curve = exact_curve(score, weak, strong)
    return TwoBackendReport(
        n=int(np.asarray(score).size),
        weak_quality=curve.weak_quality,
        strong_quality=curve.strong_quality,
        apgr=apgr(curve),
        apgr_quantile_bins=apgr_quantile_bins(score, weak, strong),
        cpt50=cpt(curve, 0.5),
        cpt80=cpt(curve, 0.8),
        sweep=sweep(score, weak, strong, thresholds),
    )


def oracle_scores(weak: Array, strong: Array) -> Array:
    """Scores of a router that knows the outcomes: send the largest gains to the strong backend."""
    return -(np.asarray(strong, dtype=np.float64) - np.asarray(weak, dtype=np.float64))


def random_router_apgr(weak: Array, strong: Array, seeds: int = 200) -> tuple[float, float, float]:
    """Mean, 2.5th and 97.5th percentile of APGR for random scores (the expectation is exactly 0.5)."""
    rng = np.random.default_rng(0)
    values = [apgr(exact_curve(rng.random(len(weak)), weak, strong)) for _ in range(seeds)]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(np.mean(values)), float(low), float(high)


# ---- N backends: cheapest backend predicted to reach a floor -------------------------------------


def choose_indices(predicted: Array, prices: Array, floor: float, names: Sequence[str]) -> IntArray:
    """Per row: the cheapest column with ``predicted >= floor``, else the highest prediction.

    Columns are ranked by (price, name); a tie on the highest prediction goes to the cheaper one.
    """
    pred = np.asarray(predicted, dtype=np.float64)
    cost = np.asarray(prices, dtype=np.float64)
    if pred.ndim != 2 or cost.shape != (pred.shape[1],) or len(names) != pred.shape[1]:
        raise OutcomesError("predicted must be (n, m), prices (m,) and names m long")
    by_price = np.asarray(sorted(range(len(names)), key=lambda j: (float(cost[j]), names[j])), dtype=np.int64)
    reaches = pred[:, by_price] >= floor
    first = np.argmax(reaches, axis=1)
    chosen = by_price[first]
    best = by_price[np.argmax(pred[:, by_price], axis=1)]
    result: IntArray = np.where(reaches.any(axis=1), chosen, best).astype(np.int64)
    return result


@dataclass(frozen=True)
class FloorResult:
    floor: float
    mean_quality: float
    share_reaching_floor: float
    mean_cost: float
    shares: dict[str, float]


def floor_result(
    chosen: IntArray, actual: Array, costs: Array, floor: float, backends: Sequence[str]
) -> FloorResult:
    """Realised quality and cost of one routing decision per row (``costs`` per row and backend)."""
    rows = np.arange(chosen.size)
    quality = np.asarray(actual)[rows, chosen]
    cost = np.asarray(costs)[rows, chosen]
    counts = np.bincount(chosen, minlength=len(backends))
    return FloorResult(
        floor=floor,
        mean_quality=float(quality.mean()),
        share_reaching_floor=float((quality >= floor).mean()),
        mean_cost=float(cost.mean()),
        shares={b: float(c / chosen.size) for b, c in zip(backends, counts, strict=True) if c},
    )
