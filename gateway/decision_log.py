"""One JSON line per request: what was decided, why, what it cost and how long it took.

Prompt text is never written by default, only its SHA-256. Lines go to stdout or to a
size-rotated file.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.types import RequestRecord


def record_fields(r: RequestRecord) -> dict[str, Any]:
    return {
        "request_id": r.request_id,
        "time": datetime.fromtimestamp(r.started_unix, UTC).isoformat(timespec="milliseconds"),
        "route": r.route,
        "backend": r.backend,
        "reason": r.reason,
        "confidence": None if r.confidence is None else round(r.confidence, 4),
        "status": r.status,
        "error": r.error_type,
        "stream": r.stream,
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "cached_tokens": r.cached_tokens,
        "reasoning_tokens": r.reasoning_tokens,
        "usage_estimated": r.usage_estimated,
        "cost_usd": round(r.cost_usd, 8),
        "baseline_cost_usd": round(r.baseline_cost_usd, 8),
        "latency_ms": round(r.duration_s * 1000, 3),
        "upstream_ms": round(r.upstream_s * 1000, 3),
        "ttft_ms": None if r.ttft_s is None else round(r.ttft_s * 1000, 3),
        "decision_ms": {
            "tokenize": round(r.timings.tokenize_s * 1000, 4),
            "rules": round(r.timings.rules_s * 1000, 4),
            "embed": round(r.timings.embed_s * 1000, 4),
            "classify": round(r.timings.classify_s * 1000, 4),
        },
        "fallbacks": [
            {"backend": a.backend, "cause": a.cause, "status": a.status} for a in r.attempts if a.cause
        ],
        "policy_version": r.policy_version,
        "prompt_sha256": r.prompt_sha256,
    }


class DecisionLog:
    def __init__(self, handler: logging.Handler) -> None:
        # A private logger (not attached to the root) so application logging config cannot
        # reformat, duplicate or silence decision lines.
        self._logger = logging.Logger("gateway.decisions", level=logging.INFO)
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._logger.addHandler(handler)
        self._handler = handler

    @classmethod
    def to_stdout(cls) -> DecisionLog:
        return cls(logging.StreamHandler(sys.stdout))

    @classmethod
    def to_file(cls, path: Path, *, max_bytes: int = 100 * 1024 * 1024, backups: int = 5) -> DecisionLog:
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(
            logging.handlers.RotatingFileHandler(
                path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
            )
        )

    def write(self, record: RequestRecord) -> None:
        self._logger.info(orjson.dumps(record_fields(record)).decode())

    def close(self) -> None:
        self._handler.close()
