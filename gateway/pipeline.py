"""The routing decision, start to finish, in one place.

    ChatRequest
      -> RoutingContext      count tokens (offline tokenizer), pick the text to embed
      -> rules               model pin, then allowed override header, then long-context threshold
      -> classifier          embed + classify off the event loop; low confidence -> escalation route
      -> default route
      -> eligibility         keep only backends whose context window fits
      -> Decision

A rule either returns a ``Decision`` or abstains with ``None``; the first decision wins.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

from classifiers.textsel import select_prompt_text, select_text
from gateway import rules
from gateway.classify import CostQualityStep, RouteClassifier, Verdict
from gateway.config import TextSelection
from gateway.runtime import Runtime
from gateway.tokens import TokenCounter
from gateway.types import ChatRequest, Decision, Reason, RoutingContext, StageTimings

# Tokenizing ~100k characters takes a few milliseconds: above this, do it in a worker thread.
_OFFLOAD_CHARS = 32_000


class Pipeline:
    def __init__(
        self,
        runtime: Runtime,
        counter: TokenCounter,
        classifier: RouteClassifier | None,
        text: TextSelection | None = None,
        *,
        cost_quality: Mapping[str, CostQualityStep] | None = None,
    ) -> None:
        self.runtime = runtime
        self.cost_quality = dict(cost_quality or {})
        self.counter = counter
        self.classifier = classifier
        self.text = text or TextSelection()
        settings = runtime.policy.classifier
        self.threshold = settings.confidence_threshold if settings else 0.0
        self.when_unsure = settings.when_unsure if settings else runtime.policy.default_route

    async def context(self, request: ChatRequest) -> RoutingContext:
        started = time.perf_counter()
        if _approx_chars(request.body) > _OFFLOAD_CHARS:
            tokens = await asyncio.to_thread(self._count, request)
        else:
            tokens = self._count(request)
        tokenize_s = time.perf_counter() - started
        text = self._routing_text(request) if self.classifier is not None else ""
        return RoutingContext(request, tokens, text, tokenize_s)

    async def decide(self, request: ChatRequest) -> Decision:
        ctx = await self.context(request)
        runtime = self.runtime
        started = time.perf_counter()
        decision = (
            rules.pinned(ctx, runtime) or rules.override(ctx, runtime) or rules.long_context(ctx, runtime)
        )
        rules_s = time.perf_counter() - started
        embed_s = classify_s = 0.0
        if decision is None and self.classifier is not None and ctx.routing_text:
            verdict = await self.classifier.classify(ctx.routing_text)
            embed_s, classify_s = verdict.embed_s, verdict.classify_s
            decision = self._from_verdict(verdict, ctx)
        if decision is None:
            route = runtime.policy.default_route
            decision = Decision(
                route=route,
                backends=runtime.routes[route],
                reason=Reason.DEFAULT,
                explanation="no rule applied and no classifier verdict; default route",
                prompt_tokens=ctx.prompt_tokens,
            )
        step = self.cost_quality.get(decision.route)
        if step is not None and decision.reason is not Reason.PINNED:
            text = ctx.routing_text or self._routing_text(request)
            verdict = await step.classifier.classify(text)
            embed_s += verdict.embed_s
            classify_s += verdict.classify_s
            decision = _cost_quality(decision, verdict, step)
        decision = rules.eligible(decision, ctx, runtime)
        timings = StageTimings(ctx.tokenize_seconds, rules_s, embed_s, classify_s)
        return dataclasses.replace(decision, timings=timings)

    def _from_verdict(self, verdict: Verdict, ctx: RoutingContext) -> Decision | None:
        routes = self.runtime.routes
        confident = verdict.confidence >= self.threshold
        if confident and verdict.label in routes:
            return Decision(
                route=verdict.label,
                backends=routes[verdict.label],
                reason=Reason.CLASSIFIER,
                explanation=(
                    f"classifier ({verdict.encoder}) chose {verdict.label!r} with confidence "
                    f"{verdict.confidence:.2f} >= {self.threshold:.2f}"
                ),
                confidence=verdict.confidence,
                probabilities=verdict.probabilities,
                prompt_tokens=ctx.prompt_tokens,
            )
        why = (
            f"confidence {verdict.confidence:.2f} < {self.threshold:.2f}"
            if not confident
            else f"label {verdict.label!r} is not a route of this policy"
        )
        return Decision(
            route=self.when_unsure,
            backends=routes[self.when_unsure],
            reason=Reason.LOW_CONFIDENCE,
            explanation=(
                f"classifier ({verdict.encoder}) leaned to {verdict.label!r} but {why}; "
                f"escalated to {self.when_unsure!r}"
            ),
            confidence=verdict.confidence,
            probabilities=verdict.probabilities,
            prompt_tokens=ctx.prompt_tokens,
        )

    def _count(self, request: ChatRequest) -> int:
        if request.endpoint == "chat":
            return self.counter.count_messages(request.body["messages"])
        return self.counter.count_prompt(request.body["prompt"])

    def _routing_text(self, request: ChatRequest) -> str:
        t = self.text
        if request.endpoint == "chat":
            return select_text(
                request.body["messages"],
                include_system=t.include_system,
                context_turns=t.context_turns,
                max_chars=t.max_chars,
            )
        return select_prompt_text(request.body["prompt"], max_chars=t.max_chars)


def _approx_chars(body: Mapping[str, Any]) -> int:
    messages = body.get("messages")
    if isinstance(messages, Sequence) and not isinstance(messages, str):
        total = 0
        for message in messages:
            content = message.get("content") if isinstance(message, Mapping) else None
            if isinstance(content, str):
                total += len(content)
            elif isinstance(content, list):
                total += sum(len(str(p.get("text", ""))) for p in content if isinstance(p, Mapping))
        return total
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return len(prompt)
    if isinstance(prompt, list):
        return sum(len(p) for p in prompt if isinstance(p, str))
    return 0


def _cost_quality(decision: Decision, verdict: Verdict, step: CostQualityStep) -> Decision:
    """Put the backend the cost/quality chooser picked first; the others stay as fallbacks."""
    chosen = step.backend_for.get(verdict.label)
    if chosen is None or chosen not in decision.backends:
        return decision
    ordered = (chosen, *(b for b in decision.backends if b != chosen))
    predicted = ", ".join(f"{step.backend_for.get(k, k)}={v:.2f}" for k, v in verdict.probabilities)
    return dataclasses.replace(
        decision,
        backends=ordered,
        reason=Reason.COST_QUALITY,
        explanation=(
            f"{decision.explanation}; cost/quality chose {chosen!r} "
            f"(predicted quality {predicted}; knob {step.knob:g})"
        ),
    )
