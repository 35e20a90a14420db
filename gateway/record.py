"""The last step: one finished request -> metrics and one decision-log line.

Nothing here decides anything; it reads the frozen ``Decision`` and ``RequestRecord``.
"""

from __future__ import annotations

from gateway.decision_log import DecisionLog
from gateway.errors import status_class
from gateway.metrics import GatewayMetrics
from gateway.types import Decision, RequestRecord


class Recorder:
    def __init__(self, metrics: GatewayMetrics | None, log: DecisionLog | None) -> None:
        self.metrics = metrics
        self.log = log

    def decided(self, decision: Decision) -> None:
        m = self.metrics
        if m is None:
            return
        m.decisions.labels(decision.route, decision.reason.value).inc()
        t = decision.timings
        m.stage.labels("tokenize").observe(t.tokenize_s)
        m.stage.labels("rules").observe(t.rules_s)
        if t.embed_s or t.classify_s:
            m.stage.labels("embed").observe(t.embed_s)
            m.stage.labels("classify").observe(t.classify_s)
        if decision.confidence is not None:
            m.confidence.labels(decision.route).observe(decision.confidence)

    def finished(self, record: RequestRecord) -> None:
        if self.metrics is not None:
            self._metrics(self.metrics, record)
        if self.log is not None:
            self.log.write(record)

    @staticmethod
    def _metrics(m: GatewayMetrics, r: RequestRecord) -> None:
        stream = "true" if r.stream else "false"
        m.requests.labels(r.route, r.backend, status_class(r.status)).inc()
        m.request_duration.labels(r.route, stream).observe(r.duration_s)
        if r.backend != "none":
            m.overhead.labels(stream).observe(max(r.duration_s - r.upstream_s, 0.0))
        if r.ttft_s is not None:
            m.ttft.labels(r.route, r.backend).observe(r.ttft_s)
        if r.prompt_tokens or r.completion_tokens:
            m.tokens.labels(r.backend, "input").inc(r.prompt_tokens)
            m.tokens.labels(r.backend, "output").inc(r.completion_tokens)
            if r.cached_tokens:
                m.tokens.labels(r.backend, "cached_input").inc(r.cached_tokens)
            if r.reasoning_tokens:
                m.tokens.labels(r.backend, "reasoning").inc(r.reasoning_tokens)
            m.cost.labels(r.route, r.backend).inc(r.cost_usd)
            m.baseline_cost.labels(r.route, r.backend).inc(r.baseline_cost_usd)
            # A counter cannot go down: a request dearer than the baseline adds no savings here,
            # and the exact net figure is baseline_cost - cost.
            m.savings.labels(r.route, r.backend).inc(max(r.baseline_cost_usd - r.cost_usd, 0.0))
            if r.usage_estimated:
                m.usage_estimated.labels(r.backend).inc()
        for i, attempt in enumerate(r.attempts):
            if attempt.cause is None:
                continue
            if attempt.cause != "circuit_open":
                m.upstream_errors.labels(attempt.backend, attempt.cause).inc()
            if i + 1 < len(r.attempts):
                m.fallbacks.labels(attempt.backend, r.attempts[i + 1].backend, attempt.cause).inc()
