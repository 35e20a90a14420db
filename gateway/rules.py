"""The policy's rules: pure functions that either decide or abstain (return ``None``).

Order is fixed by the pipeline: pin, override, long context; the classifier and the default come
after. ``eligible`` then keeps only the backends whose context window fits the request.
"""

from __future__ import annotations

import dataclasses

from gateway.errors import BadRequest, ContextTooLong
from gateway.runtime import Runtime
from gateway.types import Decision, Reason, RoutingContext


def needed_tokens(ctx: RoutingContext, runtime: Runtime) -> int:
    """Prompt plus the room the answer needs: the client's max_tokens, or the policy's reserve."""
    reserve = ctx.request.max_output_tokens
    return ctx.prompt_tokens + (reserve if reserve is not None else runtime.output_reserve_tokens)


def pinned(ctx: RoutingContext, runtime: Runtime) -> Decision | None:
    backend = runtime.pinnable.get(ctx.request.model)
    if backend is None:
        return None
    target = runtime.backends[backend]
    tokens = needed_tokens(ctx, runtime)
    if not runtime.fits(backend, tokens):
        raise ContextTooLong(
            f"model {ctx.request.model!r} has a context window of {target.max_context_tokens} tokens; "
            f"this request needs {tokens} ({ctx.prompt_tokens} prompt + answer). "
            "Shorten it, lower max_tokens, or use model 'auto'.",
            param="messages",
        )
    return Decision(
        route=target.route,
        backends=(backend,),
        reason=Reason.PINNED,
        explanation=f"client pinned model {ctx.request.model!r}",
        prompt_tokens=ctx.prompt_tokens,
    )


def override(ctx: RoutingContext, runtime: Runtime) -> Decision | None:
    wanted = ctx.request.route_override
    if wanted is None:
        return None
    if wanted not in runtime.allowed_overrides:
        allowed = ", ".join(sorted(runtime.allowed_overrides)) or "none"
        raise BadRequest(
            f"route override {wanted!r} is not allowed by the policy (allowed: {allowed})",
            param=runtime.override_header,
            code="route_not_allowed",
        )
    return Decision(
        route=wanted,
        backends=runtime.routes[wanted],
        reason=Reason.OVERRIDE,
        explanation=f"header {runtime.override_header} asked for route {wanted!r}",
        prompt_tokens=ctx.prompt_tokens,
    )


def long_context(ctx: RoutingContext, runtime: Runtime) -> Decision | None:
    route = runtime.long_context_route
    if route is None or ctx.prompt_tokens < runtime.long_context_threshold:
        return None
    return Decision(
        route=route,
        backends=runtime.routes[route],
        reason=Reason.CONTEXT_LENGTH,
        explanation=(
            f"prompt has {ctx.prompt_tokens} tokens, at or above the long-context threshold "
            f"of {runtime.long_context_threshold}"
        ),
        prompt_tokens=ctx.prompt_tokens,
    )


def eligible(decision: Decision, ctx: RoutingContext, runtime: Runtime) -> Decision:
    """Drop backends the request does not fit; move to the long-context route if none is left."""
    tokens = needed_tokens(ctx, runtime)
    fitting = tuple(b for b in decision.backends if runtime.fits(b, tokens))
    if fitting == decision.backends:
        return decision
    if fitting:
        dropped = ", ".join(b for b in decision.backends if b not in fitting)
        return dataclasses.replace(
            decision,
            backends=fitting,
            explanation=f"{decision.explanation}; skipped {dropped}: context window too small",
        )
    route = runtime.long_context_route
    if route is not None and route != decision.route:
        fallback = tuple(b for b in runtime.routes[route] if runtime.fits(b, tokens))
        if fallback:
            return dataclasses.replace(
                decision,
                route=route,
                backends=fallback,
                reason=Reason.CONTEXT_LENGTH,
                explanation=(
                    f"{decision.explanation}; but no backend of route {decision.route!r} fits "
                    f"{tokens} tokens, so moved to {route!r}"
                ),
            )
    largest = max(t.max_context_tokens for t in runtime.backends.values())
    raise ContextTooLong(
        f"this request needs {tokens} tokens ({ctx.prompt_tokens} prompt + answer); "
        f"the largest context window this gateway routes to is {largest} tokens",
        param="messages",
    )
