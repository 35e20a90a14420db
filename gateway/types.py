"""Frozen values that flow one way through a request.

    ChatRequest -> RoutingContext -> Decision -> UpstreamResult -> RequestRecord

Each step of the pipeline takes the previous value and returns a new one; nothing here does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Endpoint = Literal["chat", "completions"]


class Reason(enum.StrEnum):
    """Why a route was chosen. Values are metric label values, so the set is closed."""

    PINNED = "pinned"
    OVERRIDE = "override"
    CONTEXT_LENGTH = "context_length"
    CLASSIFIER = "classifier"
    LOW_CONFIDENCE = "low_confidence"
    COST_QUALITY = "cost_quality"
    DEFAULT = "default"
    BUDGET = "budget"  # the key's spend budget is used up: downgraded to its cheaper route
    ALLOWED_ROUTES = "allowed_routes"  # the key may not use the decided route: moved to one it may


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A parsed, validated client request. ``body`` is passed upstream untouched but for ``model``."""

    endpoint: Endpoint
    body: Mapping[str, Any]
    model: str
    stream: bool
    include_usage: bool
    max_output_tokens: int | None
    request_id: str
    route_override: str | None = None
    api_key_id: str | None = None


@dataclass(frozen=True, slots=True)
class RoutingContext:
    """What the rules and the classifier look at."""

    request: ChatRequest
    prompt_tokens: int
    routing_text: str
    tokenize_seconds: float


@dataclass(frozen=True, slots=True)
class StageTimings:
    tokenize_s: float = 0.0
    rules_s: float = 0.0
    embed_s: float = 0.0
    classify_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Decision:
    """The route and the ordered backends to try, with the reasons a human can read."""

    route: str
    backends: tuple[str, ...]
    reason: Reason
    explanation: str
    confidence: float | None = None
    probabilities: tuple[tuple[str, float], ...] = ()
    prompt_tokens: int = 0
    timings: StageTimings = field(default_factory=StageTimings)

    def as_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "backends": list(self.backends),
            "reason": self.reason.value,
            "explanation": self.explanation,
            "confidence": self.confidence,
            "probabilities": dict(self.probabilities),
            "prompt_tokens": self.prompt_tokens,
            "timings_ms": {
                "tokenize": round(self.timings.tokenize_s * 1000, 4),
                "rules": round(self.timings.rules_s * 1000, 4),
                "embed": round(self.timings.embed_s * 1000, 4),
                "classify": round(self.timings.classify_s * 1000, 4),
            },
        }


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at one backend; failed tries before the answering one explain fallbacks."""

    backend: str
    cause: str | None  # None = this attempt answered
    status: int | None = None


@dataclass(frozen=True, slots=True)
class UpstreamResult:
    """What came back from the backend that answered (or the last one tried)."""

    backend: str
    status: int
    attempts: tuple[Attempt, ...]
    usage: Usage | None
    upstream_seconds: float
    first_byte_seconds: float | None


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """Everything recorded about one finished request: metrics and the decision log read it."""

    request_id: str
    started_unix: float
    route: str
    backend: str
    reason: str
    confidence: float | None
    status: int
    stream: bool
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    usage_estimated: bool
    cost_usd: float
    baseline_cost_usd: float
    duration_s: float
    upstream_s: float
    ttft_s: float | None
    attempts: tuple[Attempt, ...]
    policy_version: str
    error_type: str | None = None
    prompt_sha256: str | None = None
    timings: StageTimings = field(default_factory=StageTimings)
    prompt_redacted: str | None = None  # only for the decision log's opt-in sample
    api_key_id: str | None = None  # the id from the keys file, never the key
