from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from classifiers.data import Example
from classifiers.encoders.base import Vectors
from classifiers.encoders.hashing import HashingEncoder
from classifiers.heads import KnnHead
from classifiers.model import Cascade, Prediction, RouteModel
from classifiers.training import train


class CountingEncoder:
    """A hash encoder that records every batch it is asked to encode."""

    def __init__(self, id: str = "counting", dim: int = 256) -> None:
        self._inner = HashingEncoder(dim)
        self._id = id
        self.batches: list[list[str]] = []

    @property
    def id(self) -> str:
        return self._id

    @property
    def space(self) -> str:
        return self._inner.space

    @property
    def dim(self) -> int:
        return self._inner.dim

    def encode(self, texts: Sequence[str]) -> Vectors:
        self.batches.append(list(texts))
        return self._inner.encode(texts)


def test_route_model_predicts(examples: list[Example], encoder: HashingEncoder) -> None:
    head, _ = train(examples, encoder, "logreg", cv_folds=0, progress=False)
    model = RouteModel(encoder, head)
    predictions, times = model.predict_timed(
        ["what is the capital of spain", "prove rigorously the graph theorem"]
    )
    assert [p.label for p in predictions] == ["small", "frontier"]
    first = predictions[0]
    assert isinstance(first, Prediction)
    assert first.encoder == "hash"
    assert [name for name, _ in first.probabilities] == list(head.labels)
    assert sum(p for _, p in first.probabilities) == pytest.approx(1.0)
    assert first.confidence == max(p for _, p in first.probabilities)
    assert times.batch_size == 2 and times.embed_seconds >= 0 and times.classify_seconds >= 0
    (alone,) = model.predict_vectors(encoder.encode(["what is the capital of spain"]))
    assert alone.label == first.label
    assert alone.confidence == pytest.approx(first.confidence)


def test_route_model_rejects_dimension_mismatch(examples: list[Example], encoder: HashingEncoder) -> None:
    head, _ = train(examples, encoder, "centroid", cv_folds=0, progress=False)
    with pytest.raises(ValueError, match="128-d vectors; the head takes 256-d"):
        RouteModel(HashingEncoder(128), head)


def test_cascade_sends_only_unsure_rows_to_second_stage_in_one_batch(examples: list[Example]) -> None:
    first_encoder, second_encoder = CountingEncoder("fast"), CountingEncoder("slow")
    head, _ = train(examples, HashingEncoder(), "logreg", cv_folds=0, progress=False)
    first = RouteModel(first_encoder, head)
    second = RouteModel(second_encoder, head)
    texts = ["what is the capital of spain", "zzz qqq", "prove rigorously the kernel theorem", "xx yy"]
    plain = first.predict(texts)
    threshold = sorted(p.confidence for p in plain)[2]  # exactly two rows fall below it
    second_encoder.batches.clear()
    predictions, times = Cascade(first, second, threshold).predict_timed(texts)
    unsure = [t for t, p in zip(texts, plain, strict=True) if p.confidence < threshold]
    assert second_encoder.batches == [unsure]
    assert times.escalated == 2 and times.batch_size == 4
    assert [p.encoder for p in predictions] == ["slow" if t in unsure else "fast" for t in texts]


def test_cascade_skips_second_stage_when_sure(examples: list[Example]) -> None:
    second_encoder = CountingEncoder("slow")
    head, _ = train(examples, HashingEncoder(), "logreg", cv_folds=0, progress=False)
    cascade = Cascade(RouteModel(HashingEncoder(), head), RouteModel(second_encoder, head), 0.0)
    _, times = cascade.predict_timed(["anything at all"])
    assert second_encoder.batches == [] and times.escalated == 0


def test_cascade_validates(examples: list[Example]) -> None:
    head, _ = train(examples, HashingEncoder(), "logreg", cv_folds=0, progress=False)
    other = KnnHead(("a", "b"), np.eye(2, 256), np.array([0, 1]), k=1)
    model = RouteModel(HashingEncoder(), head)
    with pytest.raises(ValueError, match="disagree on labels"):
        Cascade(model, RouteModel(HashingEncoder(), other), 0.5)
    with pytest.raises(ValueError, match="threshold"):
        Cascade(model, model, 1.5)
