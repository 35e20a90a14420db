"""Pure request/response shaping: no sockets."""

from __future__ import annotations

import orjson
import pytest

from gateway.cost import cost_usd
from gateway.runtime import compile_policy
from gateway.tokens import TokenCounter
from gateway.translate import MalformedUpstream, SseFilter, parse_json_response, parse_usage, upstream_body
from gateway.types import Usage
from tests.gateway.conftest import make_policy
from tests.gateway.fakes import sse_events


def test_upstream_body_replaces_model_and_keeps_the_rest() -> None:
    body = {"model": "auto", "messages": [], "temperature": 0.1, "tools": [{"x": 1}], "unknown_field": True}
    out = orjson.loads(upstream_body(body, "m-up", stream=False))
    assert out == {**body, "model": "m-up"}
    assert body["model"] == "auto"  # the client's value is not mutated


def test_stream_body_asks_for_usage_and_keeps_other_options() -> None:
    out = orjson.loads(upstream_body({"stream_options": {"x": 1}}, "m", stream=True))
    assert out["stream_options"] == {"x": 1, "include_usage": True}


def test_parse_usage_with_cached_and_reasoning_details() -> None:
    usage = parse_usage(
        {
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "prompt_tokens_details": {"cached_tokens": 40},
            "completion_tokens_details": {"reasoning_tokens": 30},
        }
    )
    assert usage == Usage(100, 50, 40, 30)
    assert parse_usage({"prompt_tokens": "a"}) is None
    assert parse_usage(None) is None


def test_cost_prices_cached_tokens_at_the_cached_price() -> None:
    runtime = compile_policy(make_policy(), env={"TEST_BIG_KEY": "k"})
    target = runtime.backends["small-a"]  # $1 in, $2 out per M; no cached price -> input price
    assert cost_usd(target, Usage(1_000_000, 1_000_000)) == pytest.approx(3.0)
    assert cost_usd(target, Usage(1_000_000, 0, cached_tokens=500_000)) == pytest.approx(1.0)


def test_malformed_json_response() -> None:
    with pytest.raises(MalformedUpstream):
        parse_json_response(b"{oops")
    with pytest.raises(MalformedUpstream):
        parse_json_response(b"[]")


@pytest.mark.parametrize("split", [1, 7, 50, 10_000])
def test_sse_filter_passes_events_whole_and_drops_usage_chunk(split: int) -> None:
    stream = b"".join(sse_events("m", usage=True))
    sse = SseFilter(client_wants_usage=False)
    out = b"".join(sse.feed(stream[i : i + split]) for i in range(0, len(stream), split)) + sse.flush()
    events = [e for e in out.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    assert not any(b'"usage":{' in e for e in events)
    assert sse.usage == Usage(10, 2)
    assert sse.saw_done
    assert sse.text_chars == len("Hello")


def test_sse_filter_keeps_usage_when_asked() -> None:
    sse = SseFilter(client_wants_usage=True)
    out = b"".join(sse.feed(e) for e in sse_events("m", usage=True))
    assert out.count(b'"usage":{') == 1


def test_sse_filter_passes_garbage_through() -> None:
    sse = SseFilter(client_wants_usage=False)
    assert sse.feed(b"data: {not json\n\n") == b"data: {not json\n\n"
    assert sse.feed(b": keep-alive comment\n\n") == b": keep-alive comment\n\n"
    assert sse.usage is None and not sse.saw_done


def test_token_counts() -> None:
    counter = TokenCounter()
    assert counter.count_text("hello world") == 2
    assert counter.count_text("<|endoftext|>") > 1  # special tokens in user text are plain text
    messages = [{"role": "user", "content": "hello world"}]
    assert counter.count_messages(messages) == 3 + 3 + 1 + 2
    parts = [{"role": "user", "content": [{"type": "text", "text": "hello world"}, {"type": "image_url"}]}]
    assert counter.count_messages(parts) > counter.count_messages(messages)
