"""Simulated models: who answers, how fast, with how much context.

A profile is a plain value. `SimulatorSettings.profile_for(model)` applies the global
overrides (`--ttft-ms`, `--tokens-per-second`) on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """How one simulated model behaves.

    ttft_ms: time from request to the first byte of the answer (first SSE event).
    tokens_per_second: pace of generated tokens after the first; 0 means all at once.
    context_tokens: prompt tokens above this are refused with `context_length_exceeded`.
    """

    name: str
    description: str
    ttft_ms: float
    tokens_per_second: float
    context_tokens: int


GENERIC_PROFILE: Final = ModelProfile(
    name="*", description="generic model", ttft_ms=50.0, tokens_per_second=100.0, context_tokens=32_768
)

DEFAULT_PROFILES: Final = MappingProxyType(
    {
        "sim-small": ModelProfile("sim-small", "small, fast model", 20.0, 200.0, 16_384),
        "sim-rag": ModelProfile("sim-rag", "retrieval-augmented model", 60.0, 120.0, 32_768),
        "sim-long": ModelProfile("sim-long", "long-context model", 150.0, 80.0, 1_000_000),
        "sim-frontier": ModelProfile("sim-frontier", "frontier model", 120.0, 60.0, 200_000),
    }
)
