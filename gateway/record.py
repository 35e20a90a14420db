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
        m.child(m.decisions, decision.route, decision.reason.value).inc()
        t = decision.timings
        m.child(m.stage, "tokenize").observe(t.tokenize_s)
        m.child(m.stage, "rules").observe(t.rules_s)
        if t.embed_s or t.classify_s:
            m.child(m.stage, "embed").observe(t.embed_s)
            m.child(m.stage, "classify").observe(t.classify_s)
        if decision.confidence is not None:
            m.child(m.confidence, decision.route).observe(decision.confidence)

    def finished(self, record: RequestRecord) -> None:
        if self.metrics is not None:
            self._metrics(self.metrics, record)
        if self.log is not None:
            self.log.write(record)

    @staticmethod
    def _metrics(m: GatewayMetrics, r: RequestRecord) -> None:
        stream = "true" if r.stream else "false"
        m.child(m.requests, r.route, r.backend, status_class(r.status)).inc()
        m.child(m.request_duration, r.route, stream).observe(r.duration_s)
        if r.backend != "none":
            m.child(m.overhead, stream).observe(max(r.duration_s - r.upstream_s, 0.0))
        if r.ttft_s is not None:
            m.child(m.ttft, r.route, r.backend).observe(r.ttft_s)
        if r.prompt_tokens or r.completion_tokens:
            m.child(m.tokens, r.backend, "input").inc(r.prompt_tokens)
            m.child(m.tokens, r.backend, "output").inc(r.completion_tokens)
            if r.cached_tokens:
                m.child(m.tokens, r.backend, "cached_input").inc(r.cached_tokens)
            if r.reasoning_tokens:
                m.child(m.tokens, r.backend, "reasoning").inc(r.reasoning_tokens)
            m.child(m.cost, r.route, r.backend).inc(r.cost_usd)
            m.child(m.baseline_cost, r.route, r.backend).inc(r.baseline_cost_usd)
            # A counter cannot go down: a request dearer than the baseline adds no savings here,
            # and the exact net figure is baseline_cost - cost.
            m.child(m.savings, r.route, r.backend).inc(max(r.baseline_cost_usd - r.cost_usd, 0.0))
            if r.usage_estimated:
                m.child(m.usage_estimated, r.backend).inc()
        for i, attempt in enumerate(r.attempts):
            if attempt.cause is None:
                continue
            if attempt.cause != "circuit_open":
                m.child(m.upstream_errors, attempt.backend, attempt.cause).inc()
            if i + 1 < len(r.attempts):
                m.child(m.fallbacks, attempt.backend, r.attempts[i + 1].backend, attempt.cause).inc()
