"""Simulator settings: one frozen value, replaced as a whole on `POST /__sim/config`.

Config JSON (all keys optional; a key that is present replaces the current value):

    {"ttft_ms": 0, "tokens_per_second": 0,          # override every profile; null = use profiles
     "max_tokens_default": 64,                      # answer length when max_tokens is larger or unset
     "seed": 0,                                     # fault draws and answer wording
     "faults": [{"kind": "status_503", "rate": 0.1}],
     "model_faults": {"sim-frontier": {"kind": "reset_mid_stream", "rate": 1}},
     "models": {"sim-rag": {"ttft_ms": 5, "tokens_per_second": 500, "context_tokens": 8192}}}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gateway.simulator.faults import FaultSpec, SimulatorConfigError, faults_from_json
from gateway.simulator.profiles import DEFAULT_PROFILES, GENERIC_PROFILE, ModelProfile

_KEYS = frozenset(
    {"ttft_ms", "tokens_per_second", "max_tokens_default", "seed", "faults", "model_faults", "models"}
)
_PROFILE_KEYS = frozenset({"ttft_ms", "tokens_per_second", "context_tokens", "description"})


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    ttft_ms: float | None = None
    tokens_per_second: float | None = None
    max_tokens_default: int = 64
    seed: int = 0
    faults: tuple[FaultSpec, ...] = ()
    model_faults: Mapping[str, tuple[FaultSpec, ...]] = field(default_factory=lambda: MappingProxyType({}))
    profiles: Mapping[str, ModelProfile] = field(default_factory=lambda: DEFAULT_PROFILES)

    def profile_for(self, model: str) -> ModelProfile:
        base = self.profiles.get(model)
        if base is None:
            base = dataclasses.replace(GENERIC_PROFILE, name=model)
        if self.ttft_ms is None and self.tokens_per_second is None:
            return base
        return dataclasses.replace(
            base,
            ttft_ms=base.ttft_ms if self.ttft_ms is None else self.ttft_ms,
            tokens_per_second=base.tokens_per_second
            if self.tokens_per_second is None
            else self.tokens_per_second,
        )

    def faults_for(self, model: str) -> tuple[FaultSpec, ...]:
        return self.model_faults.get(model, self.faults)

    def to_json(self) -> dict[str, Any]:
        return {
            "ttft_ms": self.ttft_ms,
            "tokens_per_second": self.tokens_per_second,
            "max_tokens_default": self.max_tokens_default,
            "seed": self.seed,
            "faults": [f.to_json() for f in self.faults],
            "model_faults": {m: [f.to_json() for f in fs] for m, fs in self.model_faults.items()},
            "models": {
                name: {
                    "ttft_ms": p.ttft_ms,
                    "tokens_per_second": p.tokens_per_second,
                    "context_tokens": p.context_tokens,
                    "description": p.description,
                }
                for name, p in self.profiles.items()
            },
        }


def _optional_number(obj: Mapping[str, Any], key: str) -> float | None:
    value = obj[key]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise SimulatorConfigError(f"{key!r} must be a number >= 0 or null, got {value!r}")
    return float(value)


def _int(obj: Mapping[str, Any], key: str, minimum: int) -> int:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SimulatorConfigError(f"{key!r} must be an integer >= {minimum}, got {value!r}")
    return value


def _profile(name: str, base: ModelProfile, obj: object) -> ModelProfile:
    if not isinstance(obj, Mapping):
        raise SimulatorConfigError(f"models.{name} must be an object")
    unknown = set(obj) - _PROFILE_KEYS
    if unknown:
        raise SimulatorConfigError(f"models.{name}: unknown field(s) {', '.join(sorted(unknown))}")
    changes: dict[str, Any] = {"name": name}
    for key in ("ttft_ms", "tokens_per_second"):
        if key in obj:
            value = _optional_number(obj, key)
            changes[key] = getattr(base, key) if value is None else value
    if "context_tokens" in obj:
        changes["context_tokens"] = _int(obj, "context_tokens", 1)
    if "description" in obj:
        changes["description"] = str(obj["description"])
    return dataclasses.replace(base, **changes)


def apply_config(settings: SimulatorSettings, obj: object) -> SimulatorSettings:
    """A new settings value with the keys of `obj` applied; raises SimulatorConfigError."""
    if not isinstance(obj, Mapping):
        raise SimulatorConfigError("the config must be a JSON object")
    unknown = set(obj) - _KEYS
    if unknown:
        raise SimulatorConfigError(
            f"unknown config key(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KEYS))}"
        )
    changes: dict[str, Any] = {}
    for key in ("ttft_ms", "tokens_per_second"):
        if key in obj:
            changes[key] = _optional_number(obj, key)
    if "max_tokens_default" in obj:
        changes["max_tokens_default"] = _int(obj, "max_tokens_default", 1)
    if "seed" in obj:
        changes["seed"] = _int(obj, "seed", 0)
    if "faults" in obj:
        changes["faults"] = faults_from_json(obj["faults"])
    if "model_faults" in obj:
        mf = obj["model_faults"]
        if mf is None:
            mf = {}
        if not isinstance(mf, Mapping):
            raise SimulatorConfigError("'model_faults' must map model names to faults")
        changes["model_faults"] = MappingProxyType({str(m): faults_from_json(f) for m, f in mf.items()})
    if "models" in obj:
        models = obj["models"]
        if not isinstance(models, Mapping):
            raise SimulatorConfigError("'models' must map model names to profile fields")
        profiles = dict(settings.profiles)
        for name, fields in models.items():
            base = profiles.get(name) or dataclasses.replace(GENERIC_PROFILE, name=name)
            profiles[name] = _profile(name, base, fields)
        changes["profiles"] = MappingProxyType(profiles)
    return dataclasses.replace(settings, **changes)
