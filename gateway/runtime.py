"""A policy compiled into the immutable object the request path reads.

Compiling resolves everything a request would otherwise look up again and again: upstream URLs,
auth headers from the environment, timeouts, which model names a client may pin. A reload
builds a new ``Runtime`` and swaps one reference; requests in flight keep the one they started with.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from gateway.config import Backend, Policy, PolicyError


@dataclass(frozen=True, slots=True)
class BackendTarget:
    """Where and how to reach one backend. The key never appears in repr, logs or errors."""

    name: str
    route: str
    model: str
    chat_url: str
    completions_url: str
    max_context_tokens: int
    connect_s: float
    first_byte_s: float
    total_s: float
    price_in_per_token: float
    price_out_per_token: float
    price_cached_in_per_token: float
    auth_headers: Mapping[str, str] = field(repr=False, default_factory=dict)


@dataclass(frozen=True, slots=True)
class Runtime:
    policy: Policy
    version: str
    backends: Mapping[str, BackendTarget]
    routes: Mapping[str, tuple[str, ...]]
    pinnable: Mapping[str, str]  # client-visible model name -> backend name
    virtual_models: frozenset[str]
    override_header: str
    allowed_overrides: frozenset[str]
    long_context_route: str | None
    long_context_threshold: int
    output_reserve_tokens: int
    max_attempts: int
    baseline: BackendTarget | None

    def fits(self, backend: str, tokens: int) -> bool:
        return self.backends[backend].max_context_tokens >= tokens


def _target(backend: Backend, env: Mapping[str, str]) -> BackendTarget:
    base = str(backend.base_url).rstrip("/")
    headers: dict[str, str] = {}
    if backend.api_key_env is not None:
        key = env.get(backend.api_key_env)
        if not key:
            raise PolicyError(
                f"backend {backend.name!r}: environment variable {backend.api_key_env} is not set "
                "(it should hold the backend's API key)"
            )
        headers["authorization"] = f"Bearer {key}"
    cached = backend.price_per_mtok_cached_in
    return BackendTarget(
        name=backend.name,
        route=backend.path,
        model=backend.model,
        chat_url=f"{base}/chat/completions",
        completions_url=f"{base}/completions",
        max_context_tokens=backend.max_context_tokens,
        connect_s=backend.timeouts.connect_ms / 1000,
        first_byte_s=backend.timeouts.first_byte_ms / 1000,
        total_s=backend.timeouts.total_ms / 1000,
        price_in_per_token=backend.price_per_mtok_in / 1e6,
        price_out_per_token=backend.price_per_mtok_out / 1e6,
        price_cached_in_per_token=(cached if cached is not None else backend.price_per_mtok_in) / 1e6,
        auth_headers=MappingProxyType(headers),
    )


def policy_version(policy: Policy) -> str:
    """The declared version plus a short content hash, so two edits never share a version."""
    digest = hashlib.sha256(policy.model_dump_json().encode()).hexdigest()[:8]
    return f"{policy.version}+{digest}"


def compile_policy(policy: Policy, env: Mapping[str, str] | None = None) -> Runtime:
    env = os.environ if env is None else env
    targets = {b.name: _target(b, env) for b in policy.backends}
    pinnable: dict[str, str] = {}
    if policy.rules.pinning:
        for backend in policy.backends:
            if backend.pinnable:
                pinnable.setdefault(backend.model, backend.name)
                pinnable.setdefault(backend.name, backend.name)
    long_context = policy.rules.long_context
    return Runtime(
        policy=policy,
        version=policy_version(policy),
        backends=MappingProxyType(targets),
        routes=MappingProxyType({name: route.backends for name, route in policy.routes.items()}),
        pinnable=MappingProxyType(pinnable),
        virtual_models=frozenset(policy.virtual_models),
        override_header=policy.rules.override.header.lower(),
        allowed_overrides=frozenset(policy.rules.override.allowed_routes),
        long_context_route=long_context.route if long_context else None,
        long_context_threshold=long_context.threshold_tokens if long_context else 0,
        output_reserve_tokens=policy.rules.output_reserve_tokens,
        max_attempts=policy.forwarding.max_attempts,
        baseline=targets[policy.baseline_backend] if policy.baseline_backend else None,
    )
