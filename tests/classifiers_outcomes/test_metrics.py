"""APGR / CPT / sweep arithmetic on cases small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from classifiers.outcomes_data import OutcomesError
from classifiers.outcomes_metrics import (
    apgr,
    apgr_quantile_bins,
    choose_indices,
    cpt,
    exact_curve,
    oracle_scores,
    random_router_apgr,
    sweep,
    threshold_for_strong_share,
)

WEAK = np.array([1.0, 1.0, 0.0, 0.0])
STRONG = np.array([1.0, 1.0, 1.0, 1.0])


def test_perfect_router_recovers_the_gap_first() -> None:
    # Rows 2 and 3 are the only ones the strong backend improves; a perfect router sends them first.
    curve = exact_curve(oracle_scores(WEAK, STRONG), WEAK, STRONG)
    assert curve.strong_share.tolist() == [0.0, 0.5, 1.0]
    assert curve.pgr.tolist() == [0.0, 1.0, 1.0]
    # Area: triangle 0..0.5 (0.25) + rectangle 0.5..1 (0.5).
    assert apgr(curve) == pytest.approx(0.75)
    assert cpt(curve, 0.5) == pytest.approx(0.25)
    assert cpt(curve, 0.8) == pytest.approx(0.40)


def test_worst_router_sends_useless_calls_first() -> None:
    curve = exact_curve(-oracle_scores(WEAK, STRONG), WEAK, STRONG)
    assert apgr(curve) == pytest.approx(0.25)
    assert cpt(curve, 0.5) == pytest.approx(0.75)


def test_router_with_one_score_for_everything_is_the_random_expectation() -> None:
    curve = exact_curve(np.full(4, 0.3), WEAK, STRONG)
    assert curve.strong_share.tolist() == [0.0, 1.0]
    assert apgr(curve) == pytest.approx(0.5)
    assert cpt(curve, 0.5) == pytest.approx(0.5)
    assert cpt(curve, 0.8) == pytest.approx(0.8)


def test_random_scores_average_to_half() -> None:
    rng = np.random.default_rng(1)
    weak = (rng.random(400) < 0.6).astype(float)
    strong = (rng.random(400) < 0.8).astype(float)
    mean, low, high = random_router_apgr(weak, strong, seeds=100)
    assert mean == pytest.approx(0.5, abs=0.02)
    assert low < 0.5 < high


def test_pgr_can_exceed_one_when_the_strong_backend_is_sometimes_worse() -> None:
    weak = np.array([1.0, 0.0, 0.0, 0.0])
    strong = np.array([0.0, 1.0, 1.0, 1.0])
    curve = exact_curve(oracle_scores(weak, strong), weak, strong)
    # After the three gains: quality 1.0 against q_w 0.25, q_s 0.75 -> PGR 1.5; then back to 1.
    assert curve.pgr.tolist() == pytest.approx([0.0, 1.5, 1.0])
    assert apgr(curve) == pytest.approx(0.75 * 0.75 + 0.25 * 1.25)


def test_quantile_estimate_matches_exact_area_for_a_perfect_router_on_many_rows() -> None:
    weak = np.tile([1.0, 0.0], 500)
    strong = np.ones(1000)
    scores = oracle_scores(weak, strong) + np.linspace(0, 1e-3, 1000)  # break ties
    exact = apgr(exact_curve(scores, weak, strong))
    assert exact == pytest.approx(0.75, abs=1e-3)
    assert apgr_quantile_bins(scores, weak, strong) == pytest.approx(exact, abs=0.01)


def test_sweep_routes_to_cheap_when_score_reaches_threshold() -> None:
    scores = np.array([0.9, 0.8, 0.2, 0.1])  # rows 2, 3 unlikely to be fine on the cheap backend
    points = sweep(scores, WEAK, STRONG, [0.0, 0.5, 0.85, 1.0])
    assert [p.strong_share for p in points] == [0.0, 0.5, 0.75, 1.0]
    assert [p.quality for p in points] == [0.5, 1.0, 1.0, 1.0]
    assert [p.pgr for p in points] == [0.0, 1.0, 1.0, 1.0]


def test_threshold_for_strong_share_is_a_quantile() -> None:
    scores = np.linspace(0.0, 1.0, 101)
    threshold = threshold_for_strong_share(scores, 0.3)
    assert float((scores < threshold).mean()) == pytest.approx(0.3, abs=0.011)


@pytest.mark.parametrize(
    ("score", "weak", "strong", "message"),
    [
        (np.ones(3), np.ones(3), np.ones(3), "no gap"),
        (np.array([np.nan, 1.0]), np.array([0.0, 1.0]), np.array([1.0, 1.0]), "NaN"),
        (np.ones(2), np.ones(3), np.ones(3), "equal length"),
        (np.ones(0), np.ones(0), np.ones(0), "no queries"),
    ],
)
def test_bad_inputs_are_clear_errors(
    score: np.ndarray, weak: np.ndarray, strong: np.ndarray, message: str
) -> None:
    with pytest.raises(OutcomesError, match=message):
        exact_curve(score, weak, strong)


def test_choose_indices_takes_cheapest_backend_reaching_floor() -> None:
    predicted = np.array(
        [
            [8.0, 6.0, 9.0],  # b (cheapest) misses 7; a (middle price) reaches it
            [5.0, 7.5, 9.0],  # b reaches it
            [5.0, 4.0, 6.0],  # none reaches 7: the highest prediction, c
        ]
    )
    prices = np.array([2.0, 1.0, 10.0])
    chosen = choose_indices(predicted, prices, 7.0, ("a", "b", "c"))
    assert chosen.tolist() == [0, 1, 2]
