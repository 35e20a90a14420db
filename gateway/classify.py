"""The gateway's view of the route classifier: one async method, and the adapter to ``classifiers``.

The pipeline only sees ``RouteClassifier``; the CPU work (embedding, the head) runs in the
classifier's own worker thread with micro-batching, never on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gateway.config import ClassifierSettings


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


def _head_kind(model: Any) -> str:
    head = getattr(model, "head", None)
    return str(getattr(head, "kind", type(head).__name__)).lower()
