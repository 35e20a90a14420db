"""Offline policy tools behind ``gateway route`` and ``gateway policy validate``."""

from __future__ import annotations

import os
from typing import Any

from gateway.classify import build_classifier, build_cost_quality
from gateway.config import Policy, PolicyError
from gateway.parse import parse_request
from gateway.pipeline import Pipeline
from gateway.runtime import compile_policy
from gateway.tokens import TokenCounter


def _env_with_placeholders(policy: Policy) -> dict[str, str]:
    """Dry runs need no real keys: a missing key env var is filled with a placeholder."""
    env = dict(os.environ)
    for backend in policy.backends:
        if backend.api_key_env and not env.get(backend.api_key_env):
            env[backend.api_key_env] = "unset"
    return env


async def decide_once(policy: Policy, query: str, *, use_classifier: bool = True) -> dict[str, Any]:
    import orjson

    runtime = compile_policy(policy, _env_with_placeholders(policy))
    classifier = None
    settings = policy.classifier
    if use_classifier and settings is not None and settings.enabled:
        classifier = build_classifier(settings)
        await classifier.start()
    steps = {}
    if use_classifier:
        for route, spec in policy.routes.items():
            if spec.cost_quality is not None:
                steps[route] = build_cost_quality(runtime, route, spec.cost_quality)
                await steps[route].classifier.start()
    try:
        pipeline = Pipeline(
            runtime, TokenCounter(), classifier, settings.text if settings else None, cost_quality=steps
        )
        body = orjson.dumps(
            {"model": policy.virtual_models[0], "messages": [{"role": "user", "content": query}]}
        )
        chat = parse_request(
            body, "chat", rid="cli", default_model=policy.virtual_models[0], route_override=None
        )
        decision = await pipeline.decide(chat)
    finally:
        if classifier is not None:
            await classifier.aclose()
        for step in steps.values():
            await step.classifier.aclose()
    return {"policy": policy.name, "policy_version": runtime.version, **decision.as_dict()}


def check_policy(policy: Policy) -> list[str]:
    """Deeper checks than the schema: returns warnings, raises PolicyError for hard errors."""
    warnings: list[str] = []
    for backend in policy.backends:
        if backend.api_key_env and not os.environ.get(backend.api_key_env):
            warnings.append(f"backend {backend.name!r}: env var {backend.api_key_env} is not set here")
    compile_policy(policy, _env_with_placeholders(policy))
    used = {b for route in policy.routes.values() for b in route.backends}
    for backend in policy.backends:
        if backend.name not in used:
            warnings.append(f"backend {backend.name!r} is in no route")
    settings = policy.classifier
    if settings is not None and settings.enabled:
        artefacts = [settings.artefact] + ([settings.cascade.artefact] if settings.cascade else [])
        for artefact in artefacts:
            if not (artefact / "meta.json").is_file():
                raise PolicyError(
                    f"classifier.artefact: {artefact} is not a trained artefact (no meta.json); "
                    "train one with `gateway train`"
                )
    return warnings
