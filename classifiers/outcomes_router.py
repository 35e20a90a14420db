"""Serving-time cost/quality router: numpy arrays only, synchronous, a few microseconds per call.

``CostQualityRouter.choose(vector, candidates, prices, knob)`` works in two modes:

* ``two_backend`` (RouteLLM): one head scores p(cheap backend is good enough | query). The cheap
  backend is chosen when the score is >= ``knob`` (the threshold), else the strong one. Raising
  the threshold sends more traffic to the strong backend.
* ``floor``: one head per backend predicts its quality on the query; the cheapest candidate (by
  ``prices``) predicted to reach ``knob`` (the quality floor) is chosen; if none is, the candidate
  with the highest prediction.

Candidates the artefact has no head for are ignored; if none is known, ``CostQualityError``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from classifiers.errors import ClassifierError

Mode = Literal["two_backend", "floor"]
FloatArray = npt.NDArray[np.float32]


class CostQualityError(ClassifierError, ValueError):
    """A routing request the artefact cannot answer (unknown candidates, missing price, bad vector)."""


@dataclass(frozen=True)
class Choice:
    backend: str
    predicted_quality: Mapping[str, float]
    reason: str


@dataclass(frozen=True)
class LinearHeads:
    """One linear head per backend, stacked: prediction = link(weights @ v + bias)."""

    weights: FloatArray  # (m, d)
    bias: FloatArray  # (m,)
    sigmoid: bool

    def predict(self, vector: FloatArray) -> npt.NDArray[np.float64]:
        z = self.weights @ vector + self.bias
        out: npt.NDArray[np.float64] = np.asarray(z, dtype=np.float64)
        return 1.0 / (1.0 + np.exp(-out)) if self.sigmoid else out

    def predict_many(self, vectors: FloatArray) -> npt.NDArray[np.float64]:
        z = np.asarray(vectors @ self.weights.T + self.bias, dtype=np.float64)
        return 1.0 / (1.0 + np.exp(-z)) if self.sigmoid else z


@dataclass(frozen=True)
class KnnHeads:
    """Similarity-weighted neighbours (RouteLLM's SW ranking, simplified): a softmax over the
    cosine similarities of the ``k`` nearest training queries, averaging their outcomes."""

    points: FloatArray  # (n, d), L2-normalised
    targets: FloatArray  # (n, m); NaN = no outcome for that backend
    k: int
    temperature: float
    prior: FloatArray  # (m,) fallback when no neighbour has an outcome

    def predict(self, vector: FloatArray) -> npt.NDArray[np.float64]:
        row: npt.NDArray[np.float64] = self.predict_many(vector[None, :])[0]
        return row

    def predict_many(self, vectors: FloatArray) -> npt.NDArray[np.float64]:
        sims = vectors @ self.points.T  # (q, n)
        k = min(self.k, self.points.shape[0])
        index = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(sims, index, axis=1).astype(np.float64)
        weights = np.exp((top - top.max(axis=1, keepdims=True)) / self.temperature)  # (q, k)
        values = self.targets[index].astype(np.float64)  # (q, k, m)
        known = ~np.isnan(values)
        weighted = np.where(known, values, 0.0) * weights[:, :, None]
        mass = (known * weights[:, :, None]).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            result = weighted.sum(axis=1) / mass
        return np.where(mass > 0, result, self.prior.astype(np.float64))


Heads = LinearHeads | KnnHeads


@dataclass(frozen=True)
class CostQualityRouter:
    mode: Mode
    backends: tuple[str, ...]  # one head per name, in head order
    heads: Heads
    encoder_id: str
    encoder_space: str
    dim: int
    cheap: str | None = None  # two_backend mode only
    strong: str | None = None

    def __post_init__(self) -> None:
        if self.mode == "two_backend" and (
            self.cheap is None or self.strong is None or self.backends != (self.cheap,)
        ):
            raise CostQualityError(
                "two_backend mode needs cheap and strong, with one head for the cheap backend"
            )

    def predict(self, vector: FloatArray) -> dict[str, float]:
        """Each head's prediction for one query vector."""
        values = self.heads.predict(self._checked(vector))
        return {name: float(v) for name, v in zip(self.backends, values, strict=True)}

    def choose(
        self,
        vector: FloatArray,
        candidates: Sequence[str],
        prices: Mapping[str, float],
        quality_floor_or_threshold: float,
    ) -> Choice:
        knob = float(quality_floor_or_threshold)
        if math.isnan(knob):
            raise CostQualityError("threshold/floor must be a number")
        if self.mode == "two_backend":
            return self._choose_pair(vector, candidates, knob)
        return self._choose_floor(vector, candidates, prices, knob)

    def _choose_pair(self, vector: FloatArray, candidates: Sequence[str], threshold: float) -> Choice:
        cheap, strong = self.cheap, self.strong
        assert cheap is not None and strong is not None  # checked in __post_init__
        have_cheap, have_strong = cheap in candidates, strong in candidates
        if not (have_cheap or have_strong):
            raise CostQualityError(f"none of the candidates is {cheap!r} or {strong!r}")
        score = float(self.heads.predict(self._checked(vector))[0])
        predicted = {cheap: score}
        if not have_strong:
            return Choice(cheap, predicted, f"only {cheap} is a candidate")
        if not have_cheap:
            return Choice(strong, predicted, f"only {strong} is a candidate")
        if score >= threshold:
            return Choice(cheap, predicted, f"p(cheap good enough)={score:.3f} >= threshold {threshold:g}")
        return Choice(strong, predicted, f"p(cheap good enough)={score:.3f} < threshold {threshold:g}")

    def _choose_floor(
        self, vector: FloatArray, candidates: Sequence[str], prices: Mapping[str, float], floor: float
    ) -> Choice:
        known = [c for c in dict.fromkeys(candidates) if c in self.backends]
        if not known:
            raise CostQualityError("no candidate has a quality head in this artefact")
        missing = [c for c in known if c not in prices]
        if missing:
            raise CostQualityError(f"no price for candidate(s): {', '.join(missing)}")
        values = self.heads.predict(self._checked(vector))
        predicted = {c: float(values[self.backends.index(c)]) for c in known}
        ranked = sorted(known, key=lambda c: (float(prices[c]), c))
        for name in ranked:
            if predicted[name] >= floor:
                return Choice(name, predicted, f"cheapest predicted >= {floor:g}: {predicted[name]:.2f}")
        best = max(ranked, key=lambda c: predicted[c])  # max keeps the first (cheapest) of equals
        return Choice(
            best, predicted, f"none predicted >= {floor:g}; highest prediction {predicted[best]:.2f}"
        )

    def _checked(self, vector: FloatArray) -> FloatArray:
        v = np.asarray(vector, dtype=np.float32)
        if v.shape != (self.dim,):
            raise CostQualityError(f"vector shape {v.shape} does not match the artefact's ({self.dim},)")
        return v
