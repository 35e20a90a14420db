"""Hand-picked bad input: every case gets a clear 4xx in the OpenAI error shape, never a 5xx."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from tests.fuzz.harness import (
    MAX_BODY_BYTES,
    OVERRIDE_HEADER,
    InProcessGateway,
    assert_openai_error,
    assert_safe_headers,
)

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
ROUTE = "/v1/route"
JSON_HEADERS = ((b"content-type", b"application/json"),)


def chat(text: str = "extract the date", **extra: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], **extra}


def error_of(gw: InProcessGateway, path: str, body: bytes, status: int = 400) -> dict[str, Any]:
    r = gw.request("POST", path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert_safe_headers(r.headers.raw)
    return assert_openai_error(r.content, r.status_code)


def received(gw: InProcessGateway) -> dict[str, Any]:
    """The last body the mock upstream received, without the fields the mock adds."""
    body = dict(gw.upstream.calls[-1])
    body.pop("_url")
    body.pop("_auth")
    return body


# -- bodies that are not a JSON object ----------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"{'model': 'auto'}",
        b'{"model": }',
        b'{"model": "auto"} trailing',
        b"[1, 2]",
        b"null",
        b'"a string"',
        b"123",
        b'{"a": NaN}',
        b'{"a": 1e400}',
        b"\xef\xbb\xbf" + orjson.dumps(chat()),  # a UTF-8 byte-order mark
        b'{"model": "auto", "messages": [{"role": "user", "content": "\xff\xfe"}]}',  # invalid UTF-8
        b'{"model": "auto", "messages": [{"role": "user", "content": "\\ud800"}]}',  # lone surrogate
        b'{"model": "auto", "messages": [{"role": "user", "content": "\\udc00x"}]}',
        b'{"model": "auto"\x00, "messages": []}',  # a NUL byte outside a string
        b"a=1&b=2",
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    ],
    ids=lambda b: repr(b[:24]),
)
@pytest.mark.parametrize("path", [CHAT, COMPLETIONS, ROUTE])
def test_not_a_json_object_is_400(gw: InProcessGateway, path: str, body: bytes) -> None:
    error = error_of(gw, path, body)
    assert error["code"] == "invalid_json"
    assert error["type"] == "invalid_request_error"


def test_paired_surrogate_escape_is_valid(gw: InProcessGateway) -> None:
    r = gw.request(
        "POST", CHAT, content=b'{"model":"auto","messages":[{"role":"user","content":"hi \\ud83d\\ude00"}]}'
    )
    assert r.status_code == 200
    assert received(gw)["messages"][0]["content"] == "hi \U0001f600"


# -- wrong types for every field the gateway reads -------------------------------------------------
def _cases() -> list[tuple[str, dict[str, Any], str]]:
    cases: list[tuple[str, dict[str, Any], str]] = []
    v: Any
    for v in (1, True, [], {}, "", "   ", None, ["auto"]):
        cases.append((CHAT, {**chat(), "model": v}, "model"))
    for v in (None, [], {}, "hi", 1, True):
        cases.append((CHAT, {**chat(), "messages": v}, "messages"))
    for v in (1, "hi", None, [], True, ["user"]):
        cases.append((CHAT, {**chat(), "messages": [v]}, "messages[0]"))
    for v in (None, 1, "wizard", "USER", ["user"], {}, ""):
        cases.append((CHAT, {**chat(), "messages": [{"role": v, "content": "hi"}]}, "messages[0].role"))
    cases.append((CHAT, {**chat(), "messages": [{"content": "hi"}]}, "messages[0].role"))
    for v in (1, 1.5, True, {}, {"type": "text", "text": "hi"}, [1], ["text"], [None], [[]]):
        cases.append((CHAT, {**chat(), "messages": [{"role": "user", "content": v}]}, "messages[0].content"))
    for role in ("user", "system", "developer"):
        cases.append((CHAT, {**chat(), "messages": [{"role": role}]}, "messages[0].content"))
        cases.append((CHAT, {**chat(), "messages": [{"role": role, "content": None}]}, "messages[0].content"))
    good = {"role": "user", "content": "hi"}
    cases.append(
        (CHAT, {**chat(), "messages": [good, {"role": "user", "content": 5}]}, "messages[1].content")
    )
    for v in ("true", 1, 0, [], {}, "yes"):
        cases.append((CHAT, chat(stream=v), "stream"))
    for v in ("x", 1, [], True, ["include_usage"]):
        cases.append((CHAT, chat(stream=True, stream_options=v), "stream_options"))
    for key in ("max_tokens", "max_completion_tokens"):
        for v in (0, -1, 1.5, 1e20, "10", True, False, [], {}, [10]):
            cases.append((CHAT, chat(**{key: v}), key))
    for v in (None, "", [], [1, 2], [[1, 2]], ["ok", 3], {"text": "hi"}, 5, True):
        body = {"model": "auto", "prompt": v} if v is not None else {"model": "auto"}
        cases.append((COMPLETIONS, body, "prompt"))
    cases.append((COMPLETIONS, {"model": "auto", "prompt": "hi", "max_tokens": -5}, "max_tokens"))
    cases.append((COMPLETIONS, {"model": 7, "prompt": "hi"}, "model"))
    cases.append((ROUTE, {**chat(), "messages": []}, "messages"))
    cases.append((ROUTE, {**chat(), "model": 3}, "model"))
    return cases


@pytest.mark.parametrize(("path", "body", "param"), _cases(), ids=lambda x: repr(x)[:60])
def test_wrong_type_is_400_naming_the_field(
    gw: InProcessGateway, path: str, body: dict[str, Any], param: str
) -> None:
    before = gw.upstream_calls()
    error = error_of(gw, path, orjson.dumps(body))
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert gw.upstream_calls() == before  # rejected before anything was forwarded


def test_missing_messages_and_prompt(gw: InProcessGateway) -> None:
    assert error_of(gw, CHAT, b'{"model": "auto"}')["param"] == "messages"
    assert error_of(gw, CHAT, b"{}")["param"] == "messages"
    assert error_of(gw, COMPLETIONS, b"{}")["param"] == "prompt"


@pytest.mark.parametrize(
    "field",
    [
        {"stream": None},
        {"stream_options": None},
        {"stream_options": {}},
        {"stream": True, "stream_options": {"include_usage": "yes"}},
        {"max_tokens": None},
        {"max_tokens": 2**40},  # larger than every window: a 413, not a crash
        {"max_completion_tokens": 1, "max_tokens": "ignored when max_completion_tokens is set"},
    ],
    ids=repr,
)
def test_accepted_edge_values_never_5xx(gw: InProcessGateway, field: dict[str, Any]) -> None:
    r = gw.post_json(CHAT, chat(**field))
    assert r.status_code in (200, 413), r.text
    if r.status_code != 200:
        assert_openai_error(r.content, r.status_code)


@pytest.mark.parametrize(
    "parts",
    [
        [{"type": "text", "text": "extract this"}],
        [{"type": "text", "text": 5}, {"type": "text"}, {"type": 7, "text": []}],
        [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
        [{"type": "input_audio", "input_audio": None}, {}],
        [{"text": {"nested": ["x"] * 50}}],
        [],
    ],
    ids=repr,
)
def test_unusual_content_parts_are_forwarded_untouched(gw: InProcessGateway, parts: list[Any]) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": parts}]}
    r = gw.post_json(CHAT, body)
    assert r.status_code == 200, r.text
    assert received(gw)["messages"] == body["messages"]


def test_assistant_and_tool_messages_may_omit_content(gw: InProcessGateway) -> None:
    messages = [
        {"role": "user", "content": "extract the total"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
        {"role": "tool", "tool_call_id": "c1"},
        {"role": "user", "content": "and now?"},
    ]
    r = gw.post_json(CHAT, {"model": "auto", "messages": messages})
    assert r.status_code == 200, r.text
    assert received(gw)["messages"] == messages


# -- unknown fields pass through untouched ---------------------------------------------------------
def test_unknown_fields_reach_the_upstream_untouched(gw: InProcessGateway) -> None:
    extra: dict[str, Any] = {
        "temperature": 0.123456789012345,
        "top_p": 1e-300,
        "seed": 2**63 - 1,
        "n": -(2**63),
        "user": "ünïcødé \u2028 \x00 nul",
        "logit_bias": {"50256": -100},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "response_format": {"type": "json_schema", "json_schema": {"schema": {"a": [None, True, False]}}},
        "metadata": {"deep": json.loads("[" * 100 + "]" * 100)},
        "x-vendor-field": [1, "two", 3.0, None],
        "": "empty key",
        "stop": None,
    }
    sent = {
        "model": "auto",
        "messages": [{"role": "user", "content": "extract a\x00b", "name": "x"}],
        **extra,
    }
    r = gw.post_json(CHAT, sent)
    assert r.status_code == 200, r.text
    assert received(gw) == {**sent, "model": "m-small"}


def test_stream_options_keep_unknown_keys(gw: InProcessGateway) -> None:
    sent = chat(stream=True, stream_options={"include_usage": False, "vendor_flag": [1, 2]})
    r = gw.post_json(CHAT, sent)
    assert r.status_code == 200
    got = received(gw)
    # The gateway asks for usage on the client's behalf and changes nothing else.
    assert got == {
        **sent,
        "model": "m-small",
        "stream_options": {"include_usage": True, "vendor_flag": [1, 2]},
    }
    assert b'"usage":{' not in r.content


def test_completions_unknown_fields_pass_through(gw: InProcessGateway) -> None:
    sent = {"model": "auto", "prompt": ["extract one", "two"], "echo": True, "suffix": "\x00", "best_of": 3}
    r = gw.post_json(COMPLETIONS, sent)
    assert r.status_code == 200, r.text
    assert received(gw) == {**sent, "model": "m-small"}


# -- deep nesting --------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [300, 1_000, 10_000])
@pytest.mark.parametrize("where", ["metadata", "tool_calls", "content"])
def test_deep_nesting_is_a_clean_400(gw: InProcessGateway, where: str, depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    if where == "metadata":
        body = b'{"model":"auto","messages":[{"role":"user","content":"hi"}],"metadata":' + nested + b"}"
    elif where == "tool_calls":
        body = b'{"model":"auto","messages":[{"role":"assistant","tool_calls":' + nested + b"}]}"
    else:
        body = (
            b'{"model":"auto","messages":[{"role":"user","content":[{"type":"text","x":' + nested + b"}]}]}"
        )
    before = gw.upstream_calls()
    error = error_of(gw, CHAT, body)
    assert error["code"] == "invalid_json"
    assert gw.upstream_calls() == before


def test_nesting_at_the_limit_is_forwarded(gw: InProcessGateway) -> None:
    # 254 levels in all (the body object, then the array of messages, the message, ...).
    deep = json.loads("[" * 250 + "]" * 250)
    messages = [{"role": "assistant", "tool_calls": deep}, {"role": "user", "content": "extract it"}]
    r = gw.post_json(
        CHAT, {"model": "auto", "messages": messages, "metadata": json.loads("[" * 253 + "]" * 253)}
    )
    assert r.status_code == 200, r.text
    assert received(gw)["messages"] == messages


# -- bodies over the limit: 413 ----------------------------------------------------------------------
def _big_body(size: int) -> bytes:
    body = orjson.dumps(chat("x"))
    return body[:-1] + b',"pad":"' + b"y" * (size - len(body) - 9) + b'"}'


@pytest.mark.parametrize("path", [CHAT, COMPLETIONS, ROUTE])
def test_body_over_the_limit_with_content_length(gw: InProcessGateway, path: str) -> None:
    body = _big_body(MAX_BODY_BYTES + 1)
    assert len(body) == MAX_BODY_BYTES + 1
    error = error_of(gw, path, body, status=413)
    assert error["code"] == "request_too_large"


def test_body_at_the_limit_is_served(gw: InProcessGateway) -> None:
    body = _big_body(MAX_BODY_BYTES)
    r = gw.request("POST", CHAT, content=body)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("headers", "chunks"),
    [
        # declared too large: refused before reading anything
        (((b"content-length", str(MAX_BODY_BYTES * 100).encode()),), [b"{}"]),
        # no Content-Length, one big chunk
        ((), [_big_body(MAX_BODY_BYTES * 2)]),
        # chunked transfer: many small chunks, no Content-Length
        (((b"transfer-encoding", b"chunked"),), [b" " * 4096] * (MAX_BODY_BYTES // 4096 + 2)),
        # a Content-Length that lies (declares little, sends a lot)
        (((b"content-length", b"10"),), [b" " * 8192] * 10),
    ],
    ids=["declared", "one-chunk", "chunked", "lying-length"],
)
def test_body_over_the_limit_without_trusting_content_length(
    gw: InProcessGateway, headers: tuple[tuple[bytes, bytes], ...], chunks: list[bytes]
) -> None:
    r = gw.raw("POST", CHAT, headers=JSON_HEADERS + headers, chunks=chunks)
    assert r.status == 413, r.body[:200]
    assert assert_openai_error(r.body, r.status)["code"] == "request_too_large"
    assert_safe_headers(r.headers)


@pytest.mark.parametrize(
    "value", [b"\xb2", b"\xb9\xb3", b"-1", b"abc", b"1e9", b" 12", b"", b"99999999999999999999"]
)
def test_odd_content_length_values_never_5xx(gw: InProcessGateway, value: bytes) -> None:
    body = orjson.dumps(chat())
    r = gw.raw("POST", CHAT, headers=((b"content-length", value),), chunks=[body])
    assert r.status in (200, 400, 413), (r.status, r.body[:200])
    if r.status != 200:
        assert_openai_error(r.body, r.status)


def test_chunked_body_under_the_limit_is_served(gw: InProcessGateway) -> None:
    body = orjson.dumps(chat("extract it"))
    chunks = [body[i : i + 7] for i in range(0, len(body), 7)]
    r = gw.raw("POST", CHAT, headers=((b"transfer-encoding", b"chunked"),), chunks=chunks)
    assert r.status == 200, r.body[:200]


# -- headers: never echoed unsafely --------------------------------------------------------------
UNSAFE_VALUES = [
    b"abc\r\nset-cookie: session=evil",
    b"abc\nx-injected: 1",
    b"abc\rx",
    b"a\x00b",
    b"\xff\xfe\xfd",
    b"x" * 100_000,
    b"ok id with spaces",
    b"",
]


@pytest.mark.parametrize("value", UNSAFE_VALUES, ids=lambda v: repr(v[:20]))
@pytest.mark.parametrize("path", [CHAT, ROUTE])
def test_unsafe_request_id_is_replaced(gw: InProcessGateway, path: str, value: bytes) -> None:
    r = gw.raw("POST", path, headers=(*JSON_HEADERS, (b"x-request-id", value)), chunks=[orjson.dumps(chat())])
    assert r.status == 200, r.body[:200]
    assert_safe_headers(r.headers)
    rid = r.header(b"x-request-id")
    assert rid is not None and rid != value and len(rid) == 32


def test_safe_request_id_is_kept_on_errors_too(gw: InProcessGateway) -> None:
    r = gw.raw("POST", CHAT, headers=(*JSON_HEADERS, (b"x-request-id", b"client-id.1:2")), chunks=[b"{"])
    assert r.status == 400
    assert r.header(b"x-request-id") == b"client-id.1:2"


@pytest.mark.parametrize("value", [*UNSAFE_VALUES, b"frontier", b"rag\r\n"], ids=lambda v: repr(v[:20]))
@pytest.mark.parametrize("path", [CHAT, ROUTE])
def test_bad_route_override_is_400_and_not_echoed_in_headers(
    gw: InProcessGateway, path: str, value: bytes
) -> None:
    r = gw.raw(
        "POST",
        path,
        headers=(*JSON_HEADERS, (OVERRIDE_HEADER.encode(), value)),
        chunks=[orjson.dumps(chat())],
    )
    assert r.status == 400, (r.status, r.body[:200])
    assert assert_openai_error(r.body, r.status)["code"] == "route_not_allowed"
    assert_safe_headers(r.headers)
    assert all(v != value for _, v in r.headers)


@pytest.mark.parametrize("value", UNSAFE_VALUES, ids=lambda v: repr(v[:20]))
def test_odd_authorization_is_neither_forwarded_nor_echoed(gw: InProcessGateway, value: bytes) -> None:
    r = gw.raw(
        "POST", CHAT, headers=(*JSON_HEADERS, (b"authorization", value)), chunks=[orjson.dumps(chat())]
    )
    assert r.status == 200, r.body[:200]
    assert_safe_headers(r.headers)
    assert gw.upstream.calls[-1]["_auth"] is None  # the client's credentials never go upstream
    assert value not in r.body or not value


def test_many_and_repeated_headers(gw: InProcessGateway) -> None:
    headers = [(b"x-junk-%d" % i, b"v" * 100) for i in range(500)]
    headers += [(b"x-request-id", b"first"), (b"x-request-id", b"second"), (b"content-type", b"text/plain")]
    r = gw.raw("POST", CHAT, headers=headers, chunks=[orjson.dumps(chat())])
    assert r.status == 200
    assert_safe_headers(r.headers)


# -- content types, methods, paths ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "application/json; charset=latin-1",
        "\x01",
    ],
)
def test_content_type_is_not_trusted_the_body_decides(gw: InProcessGateway, content_type: str | None) -> None:
    headers = [] if content_type is None else [(b"content-type", content_type.encode("latin-1"))]
    good = gw.raw("POST", CHAT, headers=headers, chunks=[orjson.dumps(chat())])
    assert good.status == 200, good.body[:200]
    bad = gw.raw("POST", CHAT, headers=headers, chunks=[b"model=auto&messages=hi"])
    assert bad.status == 400
    assert assert_openai_error(bad.body, bad.status)["code"] == "invalid_json"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "BREW"])
@pytest.mark.parametrize("path", [CHAT, COMPLETIONS, ROUTE])
def test_wrong_method_is_405_in_openai_shape(gw: InProcessGateway, method: str, path: str) -> None:
    r = gw.raw(method, path, headers=JSON_HEADERS, chunks=[orjson.dumps(chat())])
    assert r.status == 405
    assert r.header(b"allow") == b"POST"
    assert_safe_headers(r.headers)
    if method != "HEAD":
        assert assert_openai_error(r.body, r.status)["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/chat/completions/",
        "/v1//chat/completions",
        "/V1/CHAT/COMPLETIONS",
        "/v1/chat/completions%00",
        "/" + "a" * 10_000,
    ],
)
def test_unknown_paths_are_404_in_openai_shape(gw: InProcessGateway, path: str) -> None:
    r = gw.raw("POST", path, headers=JSON_HEADERS, chunks=[orjson.dumps(chat())])
    assert r.status in (404, 307), r.status
    assert_safe_headers(r.headers)
    if r.status == 404:
        assert_openai_error(r.body, r.status)


# -- model names ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "model",
    ["x" * 50_000, "auto\x00", "auto\r\nx-evil: 1", "m-small ", "\u202eotua", "../../etc/passwd"],
    ids=lambda m: repr(m[:16]),
)
def test_odd_model_names_are_404_and_not_forwarded(gw: InProcessGateway, model: str) -> None:
    before = gw.upstream_calls()
    error = error_of(gw, CHAT, orjson.dumps({**chat(), "model": model}), status=404)
    assert error["code"] == "model_not_found"
    assert gw.upstream_calls() == before


def test_nul_bytes_in_strings_are_forwarded_intact(gw: InProcessGateway) -> None:
    body = chat("extract\x00 the\x00 total", user="\x00")
    r = gw.post_json(CHAT, body)
    assert r.status_code == 200
    assert received(gw)["messages"][0]["content"] == "extract\x00 the\x00 total"
