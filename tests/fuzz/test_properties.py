"""Property tests: arbitrary bodies, mutations of valid ones, arbitrary header values.

Whatever arrives, the gateway answers; a 5xx only ever comes from the (mock) upstream, after it
was asked; every error is in the OpenAI shape; no response header carries an unsafe value; a
200 stream ends with ``[DONE]`` or an error event; and a request the gateway accepts reaches the
upstream with every field it does not own untouched.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.harness import (
    MODELS,
    OVERRIDE_HEADER,
    UPSTREAM_STATUSES,
    InProcessGateway,
    assert_openai_error,
    assert_safe_headers,
)

PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/route")
BOUNDED = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# JSON values orjson writes back exactly (integers within 64 bits, finite floats).
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(
    ["model", "messages", "prompt", "stream", "stream_options", "max_tokens", "max_completion_tokens"]
) | st.text(max_size=12)

texts = st.sampled_from(["extract the date", "wiki policy?", "prove it", "summarise", "hmm", ""]) | st.text(
    max_size=40
)
part = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "x"]), "text": texts})
content = texts | st.lists(part, max_size=3) | st.none()
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "developer", "assistant", "tool", "function"])},
    optional={"content": content, "name": st.text(max_size=8), "tool_calls": json_values},
)
valid_chat = st.fixed_dictionaries(
    {
        "model": st.sampled_from(MODELS),
        "messages": st.lists(message, min_size=1, max_size=4).map(
            lambda ms: [*ms, {"role": "user", "content": "extract it"}]
        ),
    },
    optional={
        "stream": st.booleans() | st.none(),
        "stream_options": st.none() | st.fixed_dictionaries({}, optional={"include_usage": json_values}),
        "max_tokens": st.integers(min_value=1, max_value=5000) | st.none(),
        "max_completion_tokens": st.integers(min_value=1, max_value=5000),
        "temperature": st.floats(min_value=0, max_value=2),
        "x-unknown": json_values,
    },
)
valid_completion = st.fixed_dictionaries(
    {
        "model": st.sampled_from(MODELS),
        "prompt": texts.filter(bool) | st.lists(st.text(max_size=20), min_size=1, max_size=3),
    },
    optional={
        "stream": st.booleans(),
        "max_tokens": st.integers(min_value=1, max_value=5000),
        "echo": json_values,
    },
)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A valid body with one to three edits: a key dropped, replaced by any JSON, or added; or a
    value somewhere inside replaced."""
    body: dict[str, Any] = orjson.loads(orjson.dumps(draw(base)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        op = draw(st.sampled_from(["drop", "set", "deep"]))
        if op == "drop" and body:
            body.pop(draw(st.sampled_from(sorted(body))))
        elif op == "set":
            body[draw(keys)] = draw(json_values)
        else:
            _replace_inside(body, draw)
    return body


def _replace_inside(value: Any, draw: st.DrawFn) -> None:
    while True:
        if isinstance(value, dict) and value:
            key = draw(st.sampled_from(sorted(value)))
        elif isinstance(value, list) and value:
            key = draw(st.integers(min_value=0, max_value=len(value) - 1))
        else:
            return
        child = value[key]
        if not isinstance(child, dict | list) or not child or draw(st.booleans()):
            value[key] = draw(json_values)
            return
        value = child


def check_answer(gw: InProcessGateway, response: httpx.Response, calls_before: int) -> None:
    status = response.status_code
    assert_safe_headers(response.headers.raw)
    if status >= 500:
        assert status in UPSTREAM_STATUSES, (status, response.text[:300])
        # Either the upstream failed just now, or earlier failures opened its circuit breaker.
        asked = gw.upstream_calls() > calls_before
        assert asked or b'"no_healthy_backend"' in response.content, (status, response.text[:300])
    if status >= 400:
        assert_openai_error(response.content, status)
        return
    assert status == 200, status
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = [e for e in response.content.split(b"\n\n") if e.strip()]
        assert events, "an empty stream"
        last = events[-1]
        if last != b"data: [DONE]":
            assert last.startswith(b"data: "), last[:200]
            assert_openai_error(last[6:], status)
    else:
        assert isinstance(orjson.loads(response.content), dict)


def post(gw: InProcessGateway, path: str, body: bytes, headers: dict[str, str] | None = None) -> None:
    before = gw.upstream_calls()
    response = gw.request(
        "POST", path, content=body, headers={"content-type": "application/json", **(headers or {})}
    )
    check_answer(gw, response, before)


@BOUNDED
@given(path=st.sampled_from(PATHS), body=json_values)
def test_any_json_value(gw: InProcessGateway, path: str, body: Any) -> None:
    post(gw, path, orjson.dumps(body))


@BOUNDED
@given(path=st.sampled_from(PATHS), body=st.dictionaries(keys, json_values, max_size=8))
def test_any_json_object(gw: InProcessGateway, path: str, body: dict[str, Any]) -> None:
    post(gw, path, orjson.dumps(body))


@BOUNDED
@given(path=st.sampled_from(PATHS), body=st.binary(max_size=300))
def test_any_bytes(gw: InProcessGateway, path: str, body: bytes) -> None:
    post(gw, path, body)


@BOUNDED
@given(body=mutated(valid_chat))
def test_mutated_chat_bodies(gw: InProcessGateway, body: dict[str, Any]) -> None:
    post(gw, "/v1/chat/completions", orjson.dumps(body))


@BOUNDED
@given(body=mutated(valid_completion))
def test_mutated_completion_bodies(gw: InProcessGateway, body: dict[str, Any]) -> None:
    post(gw, "/v1/completions", orjson.dumps(body))


@BOUNDED
@given(body=mutated(valid_chat))
def test_mutated_bodies_dry_run(gw: InProcessGateway, body: dict[str, Any]) -> None:
    post(gw, "/v1/route", orjson.dumps(body))


@BOUNDED
@given(body=valid_chat)
def test_accepted_bodies_reach_the_upstream_untouched(gw: InProcessGateway, body: dict[str, Any]) -> None:
    before = gw.upstream_calls()
    response = gw.request("POST", "/v1/chat/completions", content=orjson.dumps(body))
    check_answer(gw, response, before)
    if response.status_code != 200:
        return
    sent = dict(gw.upstream.calls[-1])
    sent.pop("_url")
    sent.pop("_auth")
    assert sent.pop("model") != "auto"
    expected = {k: v for k, v in orjson.loads(orjson.dumps(body)).items() if k != "model"}
    if body.get("stream"):
        options = dict(expected.get("stream_options") or {})
        expected["stream_options"] = {**options, "include_usage": True}
    assert sent == expected


header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=200
) | st.sampled_from(["rag", "small", "frontier", "long_context", "none", "a" * 129])


@BOUNDED
@given(rid=header_values, route=header_values | st.none(), path=st.sampled_from(PATHS))
def test_any_header_values(gw: InProcessGateway, rid: str, route: str | None, path: str) -> None:
    headers = {"x-request-id": rid, "authorization": f"Bearer {rid}"}
    if route is not None:
        headers[OVERRIDE_HEADER] = route
    body = orjson.dumps(
        {"model": "auto", "messages": [{"role": "user", "content": "extract"}], "prompt": "x"}
    )
    before = gw.upstream_calls()
    response = gw.request(
        "POST",
        path,
        content=body,
        headers={k.encode(): v.strip().encode("latin-1") for k, v in headers.items()},
    )
    check_answer(gw, response, before)
    if rid.strip() and response.headers.get("x-request-id") != rid.strip():
        assert len(response.headers["x-request-id"]) == 32


@BOUNDED
@given(
    raw_headers=st.lists(
        st.tuples(
            st.sampled_from([b"x-request-id", OVERRIDE_HEADER.encode(), b"authorization", b"content-length"]),
            st.binary(max_size=60),
        ),
        max_size=4,
    ),
    path=st.sampled_from(PATHS),
)
def test_any_header_bytes(gw: InProcessGateway, raw_headers: list[tuple[bytes, bytes]], path: str) -> None:
    body = orjson.dumps({"model": "auto", "messages": [{"role": "user", "content": "extract"}]})
    response = gw.raw("POST", path, headers=raw_headers, chunks=[body])
    assert_safe_headers(response.headers)
    assert response.status < 500 or response.status in UPSTREAM_STATUSES, (
        response.status,
        response.body[:200],
    )
    if response.status >= 400:
        assert_openai_error(response.body, response.status)
