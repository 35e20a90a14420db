"""Route models: an encoder and a head, and a two-stage cascade of them.

Everything here is synchronous CPU work; :mod:`classifiers.serving` runs it off the event loop.
``predict_timed`` reports how long a batch spent embedding and classifying so that the service
can record the ``embed`` and ``classify`` decision stages.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from classifiers.artefact import Artefact, load_artefact
from classifiers.encoders.base import Encoder
from classifiers.heads import Array, Head, Matrix


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    """Probability of ``label``, the most probable label."""
    probabilities: tuple[tuple[str, float], ...]
    """Every label with its probability, in the head's label order."""
    encoder: str
    """Registry name of the encoder whose vectors decided (the second stage's, if escalated)."""


@dataclass(frozen=True)
class StageTimes:
    embed_seconds: float
    classify_seconds: float
    batch_size: int
    """Rows in the batch these times belong to (1 for a cache hit)."""
    escalated: int = 0
    """Rows of the batch a :class:`Cascade` passed to its second stage."""
    cached: bool = False
    """The prediction came from the cache; no model ran and both times are zero."""

    def __add__(self, other: StageTimes) -> StageTimes:
        return StageTimes(
            self.embed_seconds + other.embed_seconds,
            self.classify_seconds + other.classify_seconds,
            max(self.batch_size, other.batch_size),
            self.escalated + other.escalated,
        )


class Classifier(Protocol):
    """What :class:`classifiers.serving.BatchingClassifier` serves."""

    @property
    def labels(self) -> tuple[str, ...]: ...

    def predict_timed(self, texts: Sequence[str]) -> tuple[list[Prediction], StageTimes]: ...


@dataclass(frozen=True)
class RouteModel:
    encoder: Encoder
    head: Head

    def __post_init__(self) -> None:
        if self.encoder.dim != self.head.input_dim:
            raise ValueError(
                f"encoder {self.encoder.id!r} gives {self.encoder.dim}-d vectors; "
                f"the head takes {self.head.input_dim}-d"
            )

    @classmethod
    def from_artefact(cls, path: str | Path, encoder: Encoder) -> RouteModel:
        artefact: Artefact = load_artefact(path, encoder)
        return cls(encoder, artefact.head)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.head.labels

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        return self.predict_timed(texts)[0]

    def predict_vectors(self, vectors: Array) -> list[Prediction]:
        return _predictions(self.head.labels, self.head.predict_proba(vectors), self.encoder.id)

    def predict_timed(self, texts: Sequence[str]) -> tuple[list[Prediction], StageTimes]:
        t0 = time.perf_counter()
        vectors = self.encoder.encode(texts)
        t1 = time.perf_counter()
        predictions = self.predict_vectors(vectors)
        t2 = time.perf_counter()
        return predictions, StageTimes(t1 - t0, t2 - t1, len(texts))


@dataclass(frozen=True)
class Cascade:
    """Ask ``first``; rows it is less than ``threshold`` sure of go, as one batch, to ``second``."""

    first: RouteModel
    second: RouteModel
    threshold: float

    def __post_init__(self) -> None:
        if self.first.labels != self.second.labels:
            raise ValueError(
                f"cascade stages disagree on labels: {self.first.labels} vs {self.second.labels}"
            )
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"cascade threshold must be within [0, 1], got {self.threshold}")

    @property
    def labels(self) -> tuple[str, ...]:
        return self.first.labels

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        return self.predict_timed(texts)[0]

    def predict_timed(self, texts: Sequence[str]) -> tuple[list[Prediction], StageTimes]:
        predictions, times = self.first.predict_timed(texts)
        unsure = [i for i, p in enumerate(predictions) if p.confidence < self.threshold]
        if not unsure:
            return predictions, times
        second, second_times = self.second.predict_timed([texts[i] for i in unsure])
        for i, prediction in zip(unsure, second, strict=True):
            predictions[i] = prediction
        return predictions, times + StageTimes(
            second_times.embed_seconds, second_times.classify_seconds, len(texts), len(unsure)
        )


def _predictions(labels: tuple[str, ...], proba: Matrix, encoder: str) -> list[Prediction]:
    best = np.argmax(proba, axis=1)
    rows = proba.tolist()
    return [
        Prediction(labels[b], row[b], tuple(zip(labels, row, strict=True)), encoder)
        for b, row in zip(best.tolist(), rows, strict=True)
    ]
