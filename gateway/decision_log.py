"""One JSON line per request: what was decided, why, what it cost and how long it took.

Prompt text is never written by default, only its SHA-256. With a sample rate above 0 that
share of requests also carries ``prompt_redacted``: the prompt with personal data and secrets
replaced (``gateway.redact``), cut to ``PROMPT_SAMPLE_CHARS`` characters.

Where lines go, and why each line is whole:

- ``stdout``: every line is one ``write(2)`` call on file descriptor 1, so lines from several
  worker processes sharing the descriptor do not interleave (a pipe keeps writes of up to 4 KiB
  whole; lines are about 1 KiB, a little more with a prompt sample).
- a file: size-rotated (``max_bytes``, ``backups``). Rotation renames files, and two processes
  rotating one file lose or mix lines, so with several workers each worker writes its own file,
  ``decisions.<pid>.jsonl`` next to the configured ``decisions.jsonl`` (see ``worker_path``).
  ``gateway report decisions.*.jsonl`` reads them together.

Streamed responses have their cost only here and in the metrics: the response headers (where
non-streamed answers carry ``x-gateway-cost-usd``) are sent before the usage is known.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import orjson

from gateway.redact import redact
from gateway.types import RequestRecord

PROMPT_SAMPLE_CHARS = 1000
# Redaction reads a bounded window of a long prompt; the window's tail is dropped so a secret
# cut in half at the window's edge cannot show its unredacted first part.
_REDACT_WINDOW_CHARS = 16 * PROMPT_SAMPLE_CHARS
_REDACT_TAIL_CHARS = 512


def iso_utc(unix: float) -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-12-04T21:29:14.123+00:00 (cheaper than datetime)."""
    millis = int(unix * 1000) % 1000
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(unix))}.{millis:03d}+00:00"


def record_fields(r: RequestRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "request_id": r.request_id,
        "time": iso_utc(r.started_unix),
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
        "api_key_id": r.api_key_id,
        "prompt_sha256": r.prompt_sha256,
    }
    sample = getattr(r, "prompt_redacted", None)
    if sample is not None:
        fields["prompt_redacted"] = sample
    return fields


def prompt_text(prompt: object) -> str:
    """The readable text of ``messages`` (role: content per message) or of ``prompt``."""
    if isinstance(prompt, str):
        return prompt
    parts: list[str] = []
    if isinstance(prompt, list):
        for item in prompt:
            if isinstance(item, Mapping):
                parts.append(f"{item.get('role', '?')}: {_content_text(item.get('content'))}")
            elif isinstance(item, str):
                parts.append(item)
    return "\n".join(parts)


def redacted_sample(text: str) -> str:
    out = redact(text[:_REDACT_WINDOW_CHARS])
    if len(text) > _REDACT_WINDOW_CHARS:
        out = out[: max(len(out) - _REDACT_TAIL_CHARS, 0)]
    return out[:PROMPT_SAMPLE_CHARS]


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, Mapping) and "text" in part
        )
    return ""


def worker_path(path: Path, pid: int) -> Path:
    """``decisions.jsonl`` -> ``decisions.<pid>.jsonl``: one file per worker process."""
    if path.suffix:
        return path.with_name(f"{path.stem}.{pid}{path.suffix}")
    return path.with_name(f"{path.name}.{pid}")


class LineSink(Protocol):
    def write_line(self, line: bytes) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class FdSink:
    """Whole lines to a file descriptor, one ``write(2)`` each (stdout by default)."""

    def __init__(self, fd: int | None = None) -> None:
        self._fd = sys.stdout.fileno() if fd is None else fd

    def write_line(self, line: bytes) -> None:
        view = memoryview(line)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class RotatingFileSink:
    """Appends lines to ``path``; before a line would take it past ``max_bytes``, renames it to
    ``path.1`` (``path.1`` to ``path.2`` and so on, keeping ``backups`` old files). One process
    per file (see the module docstring).

    Lines are buffered and written together once ``flush_bytes`` are pending or ``flush_s`` has
    passed since the last write (the app also calls ``flush`` every second), so a busy gateway
    makes one write call per many requests instead of one each.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        backups: int,
        flush_bytes: int = 64 * 1024,
        flush_s: float = 1.0,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.flush_bytes = flush_bytes
        self.flush_s = flush_s
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = path.open("ab", buffering=0)
        self._size = self._file.tell()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._last_flush = time.monotonic()

    def write_line(self, line: bytes) -> None:
        if self.max_bytes > 0 and self._size + self._pending_bytes + len(line) > self.max_bytes:
            self.flush()
            if self._size > 0:
                self._rotate()
        self._pending.append(line)
        self._pending_bytes += len(line)
        if self._pending_bytes >= self.flush_bytes or time.monotonic() - self._last_flush >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        self._file.write(data)
        self._size += len(data)

    def _rotate(self) -> None:
        self._file.close()
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{i}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
            self._file = self.path.open("ab", buffering=0)
        else:
            self._file = self.path.open("wb", buffering=0)
        self._size = 0

    def close(self) -> None:
        self.flush()
        self._file.close()


class DecisionLog:
    def __init__(self, sink: LineSink, *, sample_rate: float = 0.0, rng: random.Random | None = None) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"decision log sample rate must be between 0 and 1, not {sample_rate}")
        self._sink = sink
        self.sample_rate = sample_rate
        self._rng = rng if rng is not None else random.Random()

    @classmethod
    def to_stdout(cls, *, sample_rate: float = 0.0) -> DecisionLog:
        return cls(FdSink(), sample_rate=sample_rate)

    @classmethod
    def to_file(
        cls,
        path: Path,
        *,
        max_bytes: int = 100 * 1024 * 1024,
        backups: int = 5,
        sample_rate: float = 0.0,
    ) -> DecisionLog:
        return cls(RotatingFileSink(path, max_bytes=max_bytes, backups=backups), sample_rate=sample_rate)

    @classmethod
    def open(
        cls,
        target: str,
        *,
        max_mb: float = 100.0,
        backups: int = 5,
        sample_rate: float = 0.0,
        workers: int = 1,
    ) -> DecisionLog | None:
        """From the settings: ``off``, ``stdout`` or a path (per-worker files when workers > 1)."""
        if target == "off":
            return None
        if target == "stdout":
            return cls.to_stdout(sample_rate=sample_rate)
        path = Path(target)
        if workers > 1:
            path = worker_path(path, os.getpid())
        return cls.to_file(
            path, max_bytes=int(max_mb * 1024 * 1024), backups=backups, sample_rate=sample_rate
        )

    def prompt_fields(self, prompt: object) -> tuple[str, str | None]:
        """The prompt's SHA-256 and, for the sampled share, its redacted text."""
        digest = hashlib.sha256(orjson.dumps(prompt, default=str)).hexdigest()
        if self.sample_rate <= 0.0 or self._rng.random() >= self.sample_rate:
            return digest, None
        return digest, redacted_sample(prompt_text(prompt))

    def write(self, record: RequestRecord) -> None:
        self._sink.write_line(orjson.dumps(record_fields(record)) + b"\n")

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            self._sink.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sink.close()
