"""Fault injection: what can go wrong, how often, and for which model.

Format (JSON, the same for `POST /__sim/config`, `--config FILE` and, spelled
`KIND[:RATE][:key=value...]`, the `--fault` / `--model-fault MODEL=...` flags):

    {"kind": "stall_mid_stream", "rate": 0.1, "delay_ms": 5000, "after_chunks": 3}

A scope (global, or one model) holds a list of faults; their rates are probabilities that add
up to at most 1. For each completion request one uniform draw picks at most one fault. A model
listed in `model_faults` uses its own list (an empty list = healthy) instead of the global one.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class SimulatorConfigError(ValueError):
    """A bad flag, config file or `/__sim/config` body; the message says what to fix."""


class FaultKind(enum.StrEnum):
    STATUS_500 = "status_500"
    STATUS_502 = "status_502"
    STATUS_503 = "status_503"
    STATUS_429 = "status_429"
    SLOW_FIRST_BYTE = "slow_first_byte"
    STALL_MID_STREAM = "stall_mid_stream"
    RESET_MID_STREAM = "reset_mid_stream"
    RESET_BEFORE_RESPONSE = "reset_before_response"
    MALFORMED_JSON = "malformed_json"
    MALFORMED_SSE = "malformed_sse"


# Default pause for the two kinds that wait: long enough to trip a gateway's timeouts.
_DEFAULT_DELAY_MS = {FaultKind.SLOW_FIRST_BYTE: 2000.0, FaultKind.STALL_MID_STREAM: 5000.0}


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One fault. delay_ms: pause for slow_first_byte / stall_mid_stream.
    after_chunks: SSE events (for JSON answers: half the body) sent before a stall or reset."""

    kind: FaultKind
    rate: float = 1.0
    delay_ms: float = 0.0
    after_chunks: int = 3

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "rate": self.rate,
            "delay_ms": self.delay_ms,
            "after_chunks": self.after_chunks,
        }


def make_fault(
    kind: str, rate: float = 1.0, delay_ms: float | None = None, after_chunks: int = 3
) -> FaultSpec:
    try:
        fkind = FaultKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in FaultKind)
        raise SimulatorConfigError(f"unknown fault kind {kind!r}; known kinds: {known}") from None
    if not 0.0 <= rate <= 1.0:
        raise SimulatorConfigError(f"fault {kind}: rate must be between 0 and 1, got {rate}")
    if delay_ms is None:
        delay_ms = _DEFAULT_DELAY_MS.get(fkind, 0.0)
    if delay_ms < 0 or after_chunks < 0:
        raise SimulatorConfigError(f"fault {kind}: delay_ms and after_chunks must be >= 0")
    return FaultSpec(fkind, float(rate), float(delay_ms), int(after_chunks))


def _number(obj: Mapping[str, Any], key: str, default: float | None) -> float | None:
    value = obj.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SimulatorConfigError(f"fault field {key!r} must be a number, got {value!r}")
    return float(value)


def fault_from_json(obj: object) -> FaultSpec:
    if not isinstance(obj, Mapping):
        raise SimulatorConfigError(
            f"a fault must be an object like {{'kind': ..., 'rate': ...}}, got {obj!r}"
        )
    unknown = set(obj) - {"kind", "rate", "delay_ms", "after_chunks"}
    if unknown:
        raise SimulatorConfigError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
    kind = obj.get("kind")
    if not isinstance(kind, str):
        raise SimulatorConfigError("a fault needs a string 'kind'")
    rate = _number(obj, "rate", 1.0)
    after = _number(obj, "after_chunks", 3)
    return make_fault(
        kind,
        rate if rate is not None else 1.0,
        _number(obj, "delay_ms", None),
        int(after if after is not None else 3),
    )


def faults_from_json(obj: object) -> tuple[FaultSpec, ...]:
    """A fault object, a list of them, or null (no faults)."""
    if obj is None:
        return ()
    items: Iterable[object] = obj if isinstance(obj, list) else [obj]
    return check_rates(tuple(fault_from_json(item) for item in items))


def fault_from_arg(text: str) -> FaultSpec:
    """`KIND[:RATE][:key=value...]`, e.g. `status_503:0.2` or `stall_mid_stream:1:delay_ms=3000`."""
    kind, *rest = text.strip().split(":")
    rate = 1.0
    fields: dict[str, float] = {}
    try:
        for i, part in enumerate(rest):
            if "=" in part:
                key, _, value = part.partition("=")
                if key not in ("delay_ms", "after_chunks"):
                    raise SimulatorConfigError(f"--fault {text!r}: unknown field {key!r}")
                fields[key] = float(value)
            elif i == 0:
                rate = float(part)
            else:
                raise SimulatorConfigError(f"--fault {text!r}: expected key=value after the rate")
    except ValueError as exc:
        if isinstance(exc, SimulatorConfigError):
            raise
        raise SimulatorConfigError(f"--fault {text!r}: not a number ({exc})") from None
    return make_fault(kind, rate, fields.get("delay_ms"), int(fields.get("after_chunks", 3)))


def check_rates(faults: Sequence[FaultSpec]) -> tuple[FaultSpec, ...]:
    total = sum(f.rate for f in faults)
    if total > 1.0 + 1e-9:
        raise SimulatorConfigError(f"fault rates in one scope add up to {total:g}; they must be <= 1")
    return tuple(faults)


def choose_fault(faults: Sequence[FaultSpec], draw: float) -> FaultSpec | None:
    """The fault picked by a uniform draw in [0, 1), or None for a healthy answer."""
    edge = 0.0
    for fault in faults:
        edge += fault.rate
        if draw < edge:
            return fault
    return None
