"""Every Prometheus metric the gateway exports, created against an injected registry.

Label values come only from the policy (route and backend names) or from closed enums (reason,
cause, status class, stage); nothing a client sends becomes a label. See docs/metrics.md.
"""

from __future__ import annotations

from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

M = TypeVar("M", Counter, Histogram)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
STAGE_BUCKETS = (0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # Label lookups cost a lock and validation each; the recorder makes ~15 per request.
        # Label values are bounded by the policy, so this cache is too. Only for metrics whose
        # label sets are never removed (counters and histograms).
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.requests = Counter(
            "gateway_requests",
            "Finished requests by route, backend and status class.",
            ["route", "backend", "status_class"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "gateway_request_duration_seconds",
            "Whole request as the client sees it.",
            ["route", "stream"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.ttft = Histogram(
            "gateway_time_to_first_token_seconds",
            "From receiving the request to sending the first answer bytes.",
            ["route", "backend"],
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.overhead = Histogram(
            "gateway_routing_overhead_seconds",
            "Time the gateway added: total minus time waiting on the upstream.",
            ["stream"],
            buckets=OVERHEAD_BUCKETS,
            registry=registry,
        )
        self.stage = Histogram(
            "gateway_decision_stage_seconds",
            "Time per decision stage.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.confidence = Histogram(
            "gateway_classifier_confidence",
            "Top-class probability of the route classifier.",
            ["route"],
            buckets=CONFIDENCE_BUCKETS,
            registry=registry,
        )
        self.decisions = Counter(
            "gateway_decisions",
            "Routing decisions by route and reason.",
            ["route", "reason"],
            registry=registry,
        )
        self.tokens = Counter(
            "gateway_tokens",
            "Tokens by backend and direction.",
            ["backend", "direction"],
            registry=registry,
        )
        self.cost = Counter(
            "gateway_cost_usd",
            "Spend in USD at the policy's prices.",
            ["route", "backend"],
            registry=registry,
        )
        self.savings = Counter(
            "gateway_savings_usd",
            "Baseline backend's cost for the same tokens minus the actual cost.",
            ["route", "backend"],
            registry=registry,
        )
        self.baseline_cost = Counter(
            "gateway_baseline_cost_usd",
            "What the same tokens would have cost on the policy's baseline backend.",
            ["route", "backend"],
            registry=registry,
        )
        self.usage_estimated = Counter(
            "gateway_usage_estimated",
            "Responses whose token usage was estimated with the offline tokenizer.",
            ["backend"],
            registry=registry,
        )
        self.fallbacks = Counter(
            "gateway_fallbacks",
            "Moves from one backend to the next before the first byte.",
            ["from_backend", "to_backend", "cause"],
            registry=registry,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors",
            "Upstream failures by backend and cause.",
            ["backend", "cause"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "gateway_in_flight_requests",
            "Requests being served now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.policy_info = Gauge(
            "gateway_policy_info",
            "Loaded policy (value 1).",
            ["policy", "version"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.classifier_info = Gauge(
            "gateway_classifier_info",
            "Loaded route classifier (value 1).",
            ["encoder", "head", "artefact"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.circuit_state = Gauge(
            "gateway_circuit_state",
            "Circuit breaker state per backend: 0 closed, 1 half-open, 2 open.",
            ["backend"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.rate_limited = Counter(
            "gateway_rate_limited",
            "Requests refused or downgraded by a per-key limit.",
            ["limit"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "gateway_auth_failures",
            "Requests refused for a missing or invalid API key.",
            registry=registry,
        )
        self.limiter_store_errors = Counter(
            "gateway_limiter_store_errors",
            "Shared limiter store (Redis) unreachable.",
            registry=registry,
        )

    def child(self, metric: M, *labels: str) -> M:
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        child: M = found
        return child
