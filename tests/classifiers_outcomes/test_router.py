"""CostQualityRouter.choose: the threshold rule, the floor rule, and its agreement with evaluation."""

from __future__ import annotations

import time

import numpy as np
import pytest

from classifiers.outcomes_metrics import choose_indices
from classifiers.outcomes_router import Choice, CostQualityError, CostQualityRouter, KnnHeads, LinearHeads

DIM = 4


def pair_router(bias: float) -> CostQualityRouter:
    """p(cheap good enough) = sigmoid(v[0] * 2 + bias)."""
    weights = np.zeros((1, DIM), dtype=np.float32)
    weights[0, 0] = 2.0
    heads = LinearHeads(weights, np.array([bias], dtype=np.float32), sigmoid=True)
    return CostQualityRouter(
        "two_backend", ("cheap",), heads, "hash", "hash-4", DIM, cheap="cheap", strong="strong"
    )


def floor_router(biases: list[float]) -> CostQualityRouter:
    """Each backend's predicted quality is a constant (its bias) - enough to test the rule."""
    heads = LinearHeads(
        np.zeros((3, DIM), dtype=np.float32), np.array(biases, dtype=np.float32), sigmoid=False
    )
    return CostQualityRouter("floor", ("a", "b", "c"), heads, "hash", "hash-4", DIM)


VECTOR = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
PRICES = {"cheap": 0.1, "strong": 5.0, "a": 2.0, "b": 1.0, "c": 10.0}


def test_threshold_picks_cheap_when_score_reaches_it() -> None:
    router = pair_router(bias=0.0)  # score = sigmoid(2) = 0.8808
    low = router.choose(VECTOR, ["cheap", "strong"], PRICES, 0.8)
    high = router.choose(VECTOR, ["cheap", "strong"], PRICES, 0.9)
    assert low.backend == "cheap"
    assert high.backend == "strong"
    assert low.predicted_quality["cheap"] == pytest.approx(1 / (1 + np.exp(-2.0)), rel=1e-6)
    assert "0.881 >= threshold 0.8" in low.reason
    assert "< threshold 0.9" in high.reason


def test_threshold_with_one_known_candidate_returns_it() -> None:
    router = pair_router(bias=-10.0)
    assert router.choose(VECTOR, ["cheap", "other"], PRICES, 0.5).backend == "cheap"
    assert router.choose(VECTOR, ["strong"], PRICES, 0.5).backend == "strong"
    with pytest.raises(CostQualityError, match="none of the candidates"):
        router.choose(VECTOR, ["other"], PRICES, 0.5)


def test_floor_picks_cheapest_predicted_to_reach_it() -> None:
    router = floor_router([8.0, 6.0, 9.0])  # prices: b 1 < a 2 < c 10
    choice = router.choose(VECTOR, ["a", "b", "c"], PRICES, 7.0)
    assert choice == Choice("a", {"a": 8.0, "b": 6.0, "c": 9.0}, "cheapest predicted >= 7: 8.00")
    assert router.choose(VECTOR, ["a", "b", "c"], PRICES, 5.0).backend == "b"
    assert router.choose(VECTOR, ["a", "b", "c"], PRICES, 8.5).backend == "c"


def test_floor_nobody_reaches_it_takes_highest_prediction() -> None:
    router = floor_router([8.0, 6.0, 9.0])
    choice = router.choose(VECTOR, ["a", "b"], PRICES, 9.5)
    assert choice.backend == "a"
    assert choice.reason.startswith("none predicted >= 9.5")


def test_floor_ignores_unknown_candidates_and_needs_prices() -> None:
    router = floor_router([8.0, 6.0, 9.0])
    assert router.choose(VECTOR, ["zzz", "c"], PRICES, 7.0).backend == "c"
    with pytest.raises(CostQualityError, match="no candidate has a quality head"):
        router.choose(VECTOR, ["zzz"], PRICES, 7.0)
    with pytest.raises(CostQualityError, match="no price for candidate"):
        router.choose(VECTOR, ["a", "c"], {"a": 1.0}, 7.0)


def test_wrong_vector_shape_is_refused() -> None:
    with pytest.raises(CostQualityError, match="does not match"):
        pair_router(0.0).choose(np.zeros(3, dtype=np.float32), ["cheap", "strong"], PRICES, 0.5)


def test_two_backend_router_needs_its_pair() -> None:
    heads = LinearHeads(np.zeros((1, DIM), dtype=np.float32), np.zeros(1, dtype=np.float32), sigmoid=True)
    with pytest.raises(CostQualityError, match="two_backend mode needs"):
        CostQualityRouter("two_backend", ("cheap",), heads, "hash", "hash-4", DIM)


def test_runtime_rule_agrees_with_evaluation_rule() -> None:
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(3, DIM)).astype(np.float32)
    heads = LinearHeads(weights, np.zeros(3, dtype=np.float32), sigmoid=False)
    router = CostQualityRouter("floor", ("a", "b", "c"), heads, "hash", "hash-4", DIM)
    vectors = rng.normal(size=(200, DIM)).astype(np.float32)
    prices = np.array([PRICES["a"], PRICES["b"], PRICES["c"]])
    expected = choose_indices(heads.predict_many(vectors), prices, 0.3, ("a", "b", "c"))
    got = [router.choose(v, ["a", "b", "c"], PRICES, 0.3).backend for v in vectors]
    assert got == [("a", "b", "c")[i] for i in expected]


def test_knn_head_weights_nearest_outcomes() -> None:
    points = np.eye(DIM, dtype=np.float32)[:3]
    targets = np.array([[1.0], [0.0], [np.nan]], dtype=np.float32)
    heads = KnnHeads(points, targets, k=2, temperature=1e-3, prior=np.array([0.5], dtype=np.float32))
    # Nearest is point 0 (outcome 1); with a tiny temperature its weight dominates.
    assert heads.predict(np.array([1, 0, 0, 0], dtype=np.float32))[0] == pytest.approx(1.0)
    # Only point 2 (no outcome) and one other tie: the known neighbour decides.
    assert heads.predict(np.array([0, 0.6, 0.8, 0], dtype=np.float32))[0] == pytest.approx(0.0)


def test_choose_takes_microseconds() -> None:
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(15, 384)).astype(np.float32)
    heads = LinearHeads(weights, np.zeros(15, dtype=np.float32), sigmoid=False)
    names = tuple(f"m{i}" for i in range(15))
    router = CostQualityRouter("floor", names, heads, "x", "x", 384)
    prices = {name: float(i) for i, name in enumerate(names)}
    vector = rng.normal(size=384).astype(np.float32)
    start = time.perf_counter()
    for _ in range(2000):
        router.choose(vector, names, prices, 0.5)
    per_call = (time.perf_counter() - start) / 2000
    assert per_call < 1e-3  # measured around 20 microseconds; generous bound for a shared machine
