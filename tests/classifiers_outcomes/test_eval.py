"""Held-out evaluation: splits, exclusion of contaminated prompts, tuning on training rows only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifiers.encoders import load_encoder
from classifiers.outcomes_data import OutcomesError, load_outcomes
from classifiers.outcomes_eval import evaluate_two_backend, tune_two_backend
from classifiers.outcomes_metrics import threshold_grid
from classifiers.outcomes_train import EncoderInfo, HeadConfig, kfold, pick_pair, split_by_group, split_half

from .conftest import STRONG, WEAK


def test_excluded_prompts_leave_the_evaluation(outcomes_csv: Path) -> None:
    table = load_outcomes(outcomes_csv)
    encoder = load_encoder("hash")
    vectors = encoder.encode(list(table.prompts))
    info = EncoderInfo(encoder.id, encoder.space, encoder.dim)
    held_out = [p for p, train in zip(table.prompts, split_half(table.groups), strict=True) if not train]
    kwargs = {"cheap": WEAK, "strong": STRONG, "heads": [HeadConfig()], "thresholds": threshold_grid(3)}
    full = evaluate_two_backend(table, vectors, info, **kwargs).report  # type: ignore[arg-type]
    cut = evaluate_two_backend(table, vectors, info, exclude=frozenset(held_out[:2]), **kwargs).report  # type: ignore[arg-type]
    assert cut["split"]["excluded_from_eval"] == 2
    assert cut["split"]["eval_rows"] == full["split"]["eval_rows"] - 2
    best, scores = tune_two_backend(
        table,
        vectors,
        info,
        cheap=WEAK,
        strong=STRONG,
        candidates=[HeadConfig(c=0.1), HeadConfig(c=10.0)],
        folds=3,
    )
    assert set(scores) == {"logistic(C=0.1)", "logistic(C=10)"}
    assert best.c in {0.1, 10.0}


def test_splits_are_seeded_and_disjoint() -> None:
    groups = tuple("a" if i < 10 else "b" for i in range(30))
    half = split_half(groups, seed=1)
    assert half.sum() == 5 + 10
    assert np.array_equal(half, split_half(groups, seed=1))
    by_group = split_by_group(groups, seed=1)
    assert {g for g, t in zip(groups, by_group, strict=True) if t} in ({"a"}, {"b"})
    folds = kfold(10, 3)
    assert sorted(np.concatenate(folds).tolist()) == list(range(10))


def test_pair_defaults_and_errors(outcomes_csv: Path) -> None:
    table = load_outcomes(outcomes_csv)
    assert pick_pair(table, None, None) == (WEAK, STRONG)  # the weaker backend is taken as the cheap one
    with pytest.raises(OutcomesError, match="give both --cheap and --strong"):
        pick_pair(table, WEAK, None)
    with pytest.raises(OutcomesError, match="no backend 'x'"):
        pick_pair(table, "x", STRONG)
    with pytest.raises(OutcomesError, match="at least 2"):
        threshold_grid(1)
