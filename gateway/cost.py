"""Prices and token usage -> USD.

OpenAI counts reasoning tokens inside ``completion_tokens``, so they are priced as output tokens;
cached prompt tokens are priced at the backend's cached-input price when it declares one.
"""

from __future__ import annotations

from gateway.runtime import BackendTarget
from gateway.tokens import TokenCounter
from gateway.types import Usage


def cost_usd(target: BackendTarget, usage: Usage) -> float:
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    return (
        (usage.prompt_tokens - cached) * target.price_in_per_token
        + cached * target.price_cached_in_per_token
        + usage.completion_tokens * target.price_out_per_token
    )


def estimate_usage(counter: TokenCounter, prompt_tokens: int, answer_text: str) -> Usage:
    """When the upstream sent no usage: the prompt was counted exactly; count the answer."""
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=counter.count_text(answer_text),
        estimated=True,
    )


def estimate_from_chars(prompt_tokens: int, answer_chars: int) -> Usage:
    """For streams without a usage chunk: about four characters per token."""
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=(answer_chars + 3) // 4, estimated=True)
