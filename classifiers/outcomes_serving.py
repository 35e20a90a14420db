"""Serving a cost/quality artefact behind the same interface as a route model.

``CostQualityModel`` embeds a batch of queries once and asks the router to choose, for each, among
a fixed set of candidate backends. Its "label" is the chosen backend and its probabilities are the
predicted qualities, so :class:`classifiers.serving.BatchingClassifier` can batch and cache it
like any route classifier.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from classifiers.encoders.base import Encoder
from classifiers.model import Prediction, StageTimes
from classifiers.outcomes_router import CostQualityError, CostQualityRouter


@dataclass(frozen=True)
class CostQualityModel:
    encoder: Encoder
    router: CostQualityRouter
    candidates: tuple[str, ...]
    """Names as the outcomes data knows them."""
    prices: Mapping[str, float]
    """Cost of a nominal request on each candidate, for ranking by price."""
    knob: float
    """Threshold (two-backend artefacts) or quality floor (N-backend artefacts)."""

    def __post_init__(self) -> None:
        if self.encoder.space != self.router.encoder_space or self.encoder.dim != self.router.dim:
            raise CostQualityError(
                f"the cost/quality artefact was trained with encoder space {self.router.encoder_space!r} "
                f"({self.router.dim}-d); the policy loads {self.encoder.id!r} "
                f"({self.encoder.space}, {self.encoder.dim}-d)"
            )
        known = [c for c in self.candidates if c in self.router.backends or c in (self.router.strong,)]
        if not known:
            raise CostQualityError(
                f"none of the route's backends ({', '.join(self.candidates)}) is in the artefact "
                f"(it knows {', '.join(self.router.backends + ((self.router.strong,) if self.router.strong else ()))}); "
                "map them with cost_quality.outcome_names"
            )

    @property
    def labels(self) -> tuple[str, ...]:
        return self.candidates

    def predict_timed(self, texts: Sequence[str]) -> tuple[list[Prediction], StageTimes]:
        t0 = time.perf_counter()
        vectors = self.encoder.encode(texts)
        t1 = time.perf_counter()
        predictions = []
        for vector in vectors:
            choice = self.router.choose(vector, self.candidates, self.prices, self.knob)
            quality = choice.predicted_quality
            predictions.append(
                Prediction(
                    label=choice.backend,
                    confidence=float(quality.get(choice.backend, next(iter(quality.values()), 0.0))),
                    probabilities=tuple((k, float(v)) for k, v in quality.items()),
                    encoder=self.encoder.id,
                )
            )
        t2 = time.perf_counter()
        return predictions, StageTimes(t1 - t0, t2 - t1, len(texts))
