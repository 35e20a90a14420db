"""Loading the classifier and the cost/quality choosers a policy names, off the event loop.

Used at start-up and on every policy reload or rollback: what the new policy needs and is not
loaded yet is built first (a broken artefact fails the reload and changes nothing); the models
it replaces are closed a little later, once requests that started with them have finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from gateway.classify import CostQualityStep, RouteClassifier, build_cost_quality
from gateway.config import ClassifierSettings, Policy
from gateway.runtime import compile_policy
from gateway.state import GatewayState

log = logging.getLogger("gateway")

ClassifierFactory = Callable[[ClassifierSettings], RouteClassifier]
RETIRE_AFTER_S = 30.0


class _Closable(Protocol):
    def aclose(self) -> Awaitable[None]: ...


async def load_models(state: GatewayState, policy: Policy, factory: ClassifierFactory) -> None:
    current = state.active.runtime.policy if state.active is not None else None
    enabled = state.settings.classifier_enabled
    retired: list[_Closable] = []

    settings = policy.classifier
    new_classifier = state.classifier
    if current is None or current.classifier != settings:
        new_classifier = None
        if settings is not None and settings.enabled and enabled:
            new_classifier = await asyncio.to_thread(factory, settings)
            await new_classifier.start()

    # Cost/quality choosers depend on the route's backends and prices too: rebuilt on any change.
    steps = state.cost_quality
    if current is None or current != policy:
        steps = {}
        if enabled:
            runtime = compile_policy(policy)
            for route, spec in policy.routes.items():
                if spec.cost_quality is not None:
                    step: CostQualityStep = await asyncio.to_thread(
                        build_cost_quality, runtime, route, spec.cost_quality
                    )
                    await step.classifier.start()
                    steps[route] = step

    if new_classifier is not state.classifier:
        if state.classifier is not None:
            retired.append(state.classifier)
        state.classifier = new_classifier
        if state.metrics is not None:
            state.metrics.classifier_info.clear()
            if new_classifier is not None:
                d = new_classifier.description
                state.metrics.classifier_info.labels(
                    d.get("encoder", "?"), d.get("head", "?"), d.get("artefact", "?")
                ).set(1)
    if steps is not state.cost_quality:
        retired.extend(step.classifier for step in state.cost_quality.values())
        state.cost_quality = steps
    if retired:
        asyncio.get_running_loop().create_task(_retire(retired))


async def _retire(models: Sequence[_Closable]) -> None:
    await asyncio.sleep(RETIRE_AFTER_S)
    for model in models:
        try:
            await model.aclose()
        except (RuntimeError, OSError) as exc:
            log.warning("closing a replaced classifier failed: %s", exc)
