"""The gateway's view of the route classifier: one async method, and the adapter to ``classifiers``.

The pipeline only sees ``RouteClassifier``; the CPU work (embedding, the head) runs in the
classifier's own worker thread with micro-batching, never on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gateway.config import ClassifierSettings, CostQuality
from gateway.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Verdict:
    label: str
    confidence: float
    probabilities: tuple[tuple[str, float], ...]
    embed_s: float
    classify_s: float
    encoder: str


class RouteClassifier(Protocol):
    labels: tuple[str, ...]
    description: dict[str, str]

    async def start(self) -> None: ...

    async def classify(self, text: str) -> Verdict: ...

    async def aclose(self) -> None: ...


class BatchingRouteClassifier:
    """Adapts ``classifiers.serving.BatchingClassifier`` to the gateway's protocol."""

    def __init__(self, batching: Any, labels: tuple[str, ...], description: dict[str, str]) -> None:
        self._batching = batching
        self.labels = labels
        self.description = description

    async def start(self) -> None:
        await self._batching.start()

    async def classify(self, text: str) -> Verdict:
        prediction, times = await self._batching.classify(text)
        # A cache hit reports zero times: the decision cost nothing to embed or classify.
        return Verdict(
            label=prediction.label,
            confidence=float(prediction.confidence),
            probabilities=tuple((k, float(v)) for k, v in prediction.probabilities),
            embed_s=float(times.embed_seconds),
            classify_s=float(times.classify_seconds),
            encoder=prediction.encoder,
        )

    async def aclose(self) -> None:
        await self._batching.aclose()


def _load_model(encoder_name: str, artefact: Path) -> Any:
    from classifiers.encoders import load_encoder
    from classifiers.model import RouteModel

    return RouteModel.from_artefact(artefact, load_encoder(encoder_name))


def build_classifier(settings: ClassifierSettings) -> BatchingRouteClassifier:
    """Load encoder(s) and artefact(s) named by the policy. Slow (model loading): call it off the loop."""
    from classifiers.model import Cascade
    from classifiers.serving import BatchingClassifier

    model = _load_model(settings.encoder, settings.artefact)
    description = {"encoder": settings.encoder, "artefact": settings.artefact.name, "head": _head_kind(model)}
    if settings.cascade is not None:
        first = _load_model(settings.cascade.encoder, settings.cascade.artefact)
        model = Cascade(first=first, second=model, threshold=settings.cascade.threshold)
        description["encoder"] = f"{settings.cascade.encoder}>{settings.encoder}"
    batching = BatchingClassifier(
        model,
        max_batch=settings.batching.max_batch,
        max_wait_ms=settings.batching.max_wait_ms,
        cache_size=settings.cache_size,
    )
    labels = tuple(getattr(model, "labels", ()))
    return BatchingRouteClassifier(batching, labels, description)


# Prices are compared for a nominal request, so a backend's rank does not depend on one query.
NOMINAL_PROMPT_TOKENS = 1_000
NOMINAL_COMPLETION_TOKENS = 250


@dataclass(frozen=True, slots=True)
class CostQualityStep:
    """A route's cost/quality chooser and the map from outcome names back to backend names."""

    classifier: RouteClassifier
    backend_for: dict[str, str]
    knob: float


def build_cost_quality(runtime: Runtime, route: str, settings: CostQuality) -> CostQualityStep:
    """Load the artefact and encoder for one route's cost/quality step. Slow: call it off the loop."""
    from classifiers.encoders import load_encoder
    from classifiers.outcomes import load_artefact
    from classifiers.outcomes_serving import CostQualityModel
    from classifiers.serving import BatchingClassifier

    backends = runtime.routes[route]
    name_of = {b: settings.outcome_names.get(b, runtime.backends[b].model) for b in backends}
    prices = {
        name_of[b]: NOMINAL_PROMPT_TOKENS * runtime.backends[b].price_in_per_token
        + NOMINAL_COMPLETION_TOKENS * runtime.backends[b].price_out_per_token
        for b in backends
    }
    knob = settings.threshold if settings.threshold is not None else settings.quality_floor
    assert knob is not None  # the config model requires exactly one
    model = CostQualityModel(
        encoder=load_encoder(settings.encoder),
        router=load_artefact(settings.artefact),
        candidates=tuple(name_of[b] for b in backends),
        prices=prices,
        knob=knob,
    )
    batching = BatchingClassifier(model, max_batch=32, max_wait_ms=0.0, cache_size=20_000)
    description = {"encoder": settings.encoder, "artefact": settings.artefact.name, "head": "cost_quality"}
    classifier = BatchingRouteClassifier(batching, model.labels, description)
    return CostQualityStep(classifier, {v: k for k, v in name_of.items()}, knob)


def _head_kind(model: Any) -> str:
    head = getattr(model, "head", None)
    return str(getattr(head, "kind", type(head).__name__)).lower()
