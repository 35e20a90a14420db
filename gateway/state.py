"""Everything the app builds at start-up, in one object owned by the app (never a module global)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from prometheus_client import CollectorRegistry

from gateway.backends.openai import OpenAIBackend
from gateway.classify import CostQualityStep, RouteClassifier
from gateway.config import ClassifierSettings, Policy
from gateway.forward import BackendHealth, Forwarder
from gateway.health import CircuitBreakers, CircuitState
from gateway.limits import AccessControl
from gateway.metrics import GatewayMetrics
from gateway.pipeline import Pipeline
from gateway.record import Recorder
from gateway.runtime import Runtime, compile_policy
from gateway.settings import Settings
from gateway.shutdown import Drain
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
    transport: httpx.AsyncBaseTransport
    health: BackendHealth | None = None
    classifier: RouteClassifier | None = None
    active: Active | None = None
    previous: Policy | None = None
    default_model: str = "auto"
    load_error: str | None = field(default=None)
    drain: Drain = field(default_factory=Drain)
    access: AccessControl | None = None  # None: no keys configured, authentication off
    cost_quality: dict[str, CostQualityStep] = field(default_factory=dict)  # route -> chooser
    classifier_factory: Callable[[ClassifierSettings], RouteClassifier] | None = None

    def activate(self, policy: Policy) -> Active:
        runtime = compile_policy(policy)
        settings = policy.classifier
        use_classifier = settings is not None and settings.enabled and self.classifier is not None
        pipeline = Pipeline(
            runtime,
            self.counter,
            self.classifier if use_classifier else None,
            settings.text if settings is not None else None,
            cost_quality={r: step for r, step in self.cost_quality.items() if r in runtime.routes},
        )
        backends = {name: OpenAIBackend(target) for name, target in runtime.backends.items()}
        breaker_settings = policy.forwarding.circuit_breaker
        if self.health is None:
            self.health = CircuitBreakers(breaker_settings, backends, on_change=self._circuit_changed)
        elif isinstance(self.health, CircuitBreakers):  # a reload keeps the state of kept backends
            self.health.reconfigure(breaker_settings, backends)
        forwarder = Forwarder(self.transport, backends, self.health, max_attempts=runtime.max_attempts)
        active = Active(runtime, pipeline, forwarder)
        if self.active is not None:
            self.previous = self.active.runtime.policy
        self.active = active
        self.default_model = policy.virtual_models[0] if policy.virtual_models else "auto"
        if self.metrics is not None:
            self.metrics.policy_info.clear()
            self.metrics.policy_info.labels(policy.name, runtime.version).set(1)
        return active

    def _circuit_changed(self, backend: str, state: CircuitState | None) -> None:
        if self.metrics is None:
            return
        if state is None:
            self.metrics.circuit_state.remove(backend)
        else:
            self.metrics.circuit_state.labels(backend).set(int(state))
