"""Everything the app builds at start-up, in one object owned by the app (never a module global)."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from prometheus_client import CollectorRegistry

from gateway.backends.openai import OpenAIBackend
from gateway.classify import RouteClassifier
from gateway.config import Policy
from gateway.forward import BackendHealth, Forwarder
from gateway.metrics import GatewayMetrics
from gateway.pipeline import Pipeline
from gateway.record import Recorder
from gateway.runtime import Runtime, compile_policy
from gateway.settings import Settings
from gateway.tokens import TokenCounter


@dataclass(frozen=True, slots=True)
class Active:
    """The policy in force: swapped as a whole on reload, read once per request."""

    runtime: Runtime
    pipeline: Pipeline
    forwarder: Forwarder


@dataclass(slots=True)
class GatewayState:
    settings: Settings
    registry: CollectorRegistry
    metrics: GatewayMetrics | None
    recorder: Recorder
    counter: TokenCounter
    client: httpx.AsyncClient
    health: BackendHealth | None = None
    classifier: RouteClassifier | None = None
    active: Active | None = None
    previous: Policy | None = None
    default_model: str = "auto"
    load_error: str | None = field(default=None)

    def activate(self, policy: Policy) -> Active:
        runtime = compile_policy(policy)
        settings = policy.classifier
        use_classifier = settings is not None and settings.enabled and self.classifier is not None
        pipeline = Pipeline(
            runtime,
            self.counter,
            self.classifier if use_classifier else None,
            settings.text if settings is not None else None,
        )
        backends = {name: OpenAIBackend(target) for name, target in runtime.backends.items()}
        forwarder = Forwarder(self.client, backends, self.health, max_attempts=runtime.max_attempts)
        active = Active(runtime, pipeline, forwarder)
        if self.active is not None:
            self.previous = self.active.runtime.policy
        self.active = active
        self.default_model = policy.virtual_models[0] if policy.virtual_models else "auto"
        if self.metrics is not None:
            self.metrics.policy_info.clear()
            self.metrics.policy_info.labels(policy.name, runtime.version).set(1)
        return active
