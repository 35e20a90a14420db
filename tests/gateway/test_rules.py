"""Each rule on its own: decide or abstain, and the eligibility filter."""

from __future__ import annotations

import pytest

from gateway import rules
from gateway.errors import BadRequest, ContextTooLong
from gateway.runtime import Runtime, compile_policy
from gateway.types import ChatRequest, Decision, Reason, RoutingContext
from tests.gateway.conftest import make_policy


@pytest.fixture
def runtime() -> Runtime:
    return compile_policy(make_policy(), env={"TEST_BIG_KEY": "k"})


def ctx(
    tokens: int, model: str = "auto", override: str | None = None, max_tokens: int | None = None
) -> RoutingContext:
    request = ChatRequest(
        endpoint="chat",
        body={"messages": [{"role": "user", "content": "x"}]},
        model=model,
        stream=False,
        include_usage=False,
        max_output_tokens=max_tokens,
        request_id="r",
        route_override=override,
    )
    return RoutingContext(request, tokens, "x", 0.0)


def test_pin_abstains_for_virtual_model(runtime: Runtime) -> None:
    assert rules.pinned(ctx(10), runtime) is None


def test_pin_by_upstream_model_or_backend_name(runtime: Runtime) -> None:
    for name in ("m-rag", "rag-a"):
        decision = rules.pinned(ctx(10, model=name), runtime)
        assert decision is not None
        assert (decision.route, decision.backends, decision.reason) == ("rag", ("rag-a",), Reason.PINNED)


def test_pin_that_does_not_fit_is_413(runtime: Runtime) -> None:
    with pytest.raises(ContextTooLong, match="context window of 1000"):
        rules.pinned(ctx(900, model="m-small", max_tokens=200), runtime)


def test_override_allowed_and_refused(runtime: Runtime) -> None:
    assert rules.override(ctx(10), runtime) is None
    decision = rules.override(ctx(10, override="small"), runtime)
    assert decision is not None and decision.reason is Reason.OVERRIDE
    with pytest.raises(BadRequest, match="not allowed"):
        rules.override(ctx(10, override="frontier"), runtime)


def test_long_context_threshold(runtime: Runtime) -> None:
    assert rules.long_context(ctx(1999), runtime) is None
    decision = rules.long_context(ctx(2000), runtime)
    assert decision is not None and decision.route == "long_context"


def decision(route: str, backends: tuple[str, ...]) -> Decision:
    return Decision(route, backends, Reason.CLASSIFIER, "test", confidence=0.9)


def test_eligible_keeps_fitting_backends_in_order(runtime: Runtime) -> None:
    d = rules.eligible(decision("small", ("small-a", "big-a")), ctx(100), runtime)
    assert d.backends == ("small-a", "big-a")
    d = rules.eligible(decision("small", ("small-a", "big-a")), ctx(900), runtime)  # 900 + 256 reserve
    assert d.backends == ("big-a",)
    assert "skipped small-a" in d.explanation


def test_eligible_moves_to_long_context_when_nothing_fits(runtime: Runtime) -> None:
    d = rules.eligible(decision("frontier", ("big-a", "big-b")), ctx(9000), runtime)
    assert (d.route, d.backends, d.reason) == ("long_context", ("long-a",), Reason.CONTEXT_LENGTH)
    assert d.confidence == 0.9


def test_eligible_413_when_nothing_anywhere_fits(runtime: Runtime) -> None:
    with pytest.raises(ContextTooLong, match="largest context window"):
        rules.eligible(decision("frontier", ("big-a",)), ctx(200_000), runtime)


def test_max_tokens_counts_toward_the_window(runtime: Runtime) -> None:
    d = rules.eligible(decision("small", ("small-a", "big-a")), ctx(100, max_tokens=950), runtime)
    assert d.backends == ("big-a",)
