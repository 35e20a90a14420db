from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classifiers.data import Example
from classifiers.encoders.hashing import HashingEncoder
from classifiers.errors import DataError
from classifiers.evaluation import (
    evaluate,
    expected_calibration_error,
    format_summary,
    reliability_bins,
    write_report,
)
from classifiers.training import embed, train


@pytest.mark.parametrize("head", ["logreg", "centroid", "knn"])
def test_train_reports_cross_validated_metrics(
    examples: list[Example], encoder: HashingEncoder, head: str
) -> None:
    fitted, report = train(examples, encoder, head, cv_folds=3, progress=False)
    assert report is not None
    assert report.n == len(examples)
    assert report.labels == ("frontier", "long_context", "rag", "small")
    assert report.accuracy > 0.8
    assert sum(map(sum, report.confusion)) == len(examples)
    assert [s.support for s in report.per_label] == [24, 24, 24, 24]
    assert fitted.labels == report.labels


def test_train_refuses_unusable_data(encoder: HashingEncoder) -> None:
    one_label = [Example("a", "small"), Example("b", "small")]
    with pytest.raises(DataError, match="at least two labels"):
        train(one_label, encoder, progress=False)
    scarce = [Example(f"x{i}", "small") for i in range(5)] + [Example("y", "rag"), Example("z", "rag")]
    with pytest.raises(DataError, match="label 'rag' has 2 examples; 5-fold"):
        train(scarce, encoder, cv_folds=5, progress=False)
    with pytest.raises(DataError, match="unknown head"):
        train(scarce, encoder, "forest", progress=False)


def test_embed_batches_rows_in_order(encoder: HashingEncoder) -> None:
    texts = [f"text {i}" for i in range(10)]
    np.testing.assert_allclose(embed(texts, encoder, batch_size=3, progress=False), encoder.encode(texts))


def test_evaluate_counts_and_scores() -> None:
    labels = ("a", "b")
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    report = evaluate(["a", "b", "b", "b"], proba, labels)
    assert report.confusion == ((1, 0), (1, 2))
    assert report.accuracy == 0.75
    a, b = report.per_label
    assert (a.precision, a.recall, a.support) == (0.5, 1.0, 1)
    assert b.precision == 1.0
    assert b.recall == pytest.approx(2 / 3)
    assert report.macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)
    # ECE over 15 bins: |acc - conf| per occupied bin, weighted by share of rows.
    expected = (abs(1 - 0.9) + abs(1 - 0.8) + abs(0 - 0.6) + abs(1 - 0.7)) / 4
    assert report.ece == pytest.approx(expected)
    assert "accuracy 0.7500" in format_summary(report)
    with pytest.raises(ValueError, match=r"labels \['c'\]"):
        evaluate(["c"], proba[:1], labels)


def test_ece_of_a_calibrated_predictor_is_small() -> None:
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, 20000)
    correct = rng.random(20000) < confidence
    bins = reliability_bins(confidence, correct)
    assert len(bins) == 15
    assert sum(b.count for b in bins) == 20000
    assert expected_calibration_error(bins, 20000) < 0.02


def test_write_report_files(tmp_path: Path) -> None:
    report = evaluate(["a", "b"], np.array([[0.7, 0.3], [0.4, 0.6]]), ("a", "b"))
    paths = write_report(report, tmp_path / "r", extra={"artefact": "x"})
    assert [p.name for p in paths] == ["report.json", "confusion_matrix.png", "reliability.png"]
    data = json.loads(paths[0].read_text())
    assert data["accuracy"] == 1.0 and data["artefact"] == "x" and data["confusion"] == [[1, 0], [0, 1]]
    for png in paths[1:]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
