"""Turn a client's bytes into a ``ChatRequest``, or a clear 400.

Only the fields the gateway reads are checked (model, messages/prompt, stream, stream_options,
max_tokens); everything else passes through untouched, unknown fields included.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import BadRequest
from gateway.types import ChatRequest, Endpoint

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_MAX_DEPTH = 254  # the most nested levels orjson writes
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def request_id(supplied: str | None) -> str:
    """Keep a client's id if it is a safe token (it is echoed in a header); otherwise make one."""
    if supplied is not None and _REQUEST_ID.match(supplied):
        return supplied
    return uuid.uuid4().hex


def decode_json(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise BadRequest("the request body is empty; send a JSON object", code="invalid_json")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_json")
    # orjson reads 1024 levels but writes only 254: refuse now what could not be forwarded later.
    # Counting brackets first keeps the re-encoding off the common path.
    if raw.count(b"[") + raw.count(b"{") > _MAX_DEPTH:
        try:
            orjson.dumps(data)
        except orjson.JSONEncodeError:
            raise BadRequest(
                f"the request body is nested more than {_MAX_DEPTH} levels deep", code="invalid_json"
            ) from None
    return data


def parse_request(
    raw: bytes,
    endpoint: Endpoint,
    *,
    rid: str,
    default_model: str,
    route_override: str | None,
    api_key_id: str | None = None,
) -> ChatRequest:
    body = decode_json(raw)
    model = body.get("model", default_model)
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("'model' must be a non-empty string", param="model")
    if endpoint == "chat":
        _check_messages(body.get("messages"))
    else:
        _check_prompt(body.get("prompt"))
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false", param="stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, Mapping):
        raise BadRequest("'stream_options' must be an object", param="stream_options")
    include_usage = bool(options.get("include_usage")) if isinstance(options, Mapping) else False
    return ChatRequest(
        endpoint=endpoint,
        body=body,
        model=model,
        stream=stream,
        include_usage=include_usage,
        max_output_tokens=_max_tokens(body),
        request_id=rid,
        route_override=route_override,
        api_key_id=api_key_id,
    )


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadRequest(f"'{key}' must be a positive integer", param=key)
        return value
    return None


def _check_messages(messages: Any) -> None:
    if messages is None:
        raise BadRequest("'messages' is required", param="messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array", param="messages")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise BadRequest(f"'{where}' must be an object", param=where)
        role = message.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise BadRequest(
                f"'{where}.role' must be one of {', '.join(sorted(_ROLES))}", param=f"{where}.role"
            )
        content = message.get("content")
        if content is None:
            if role in ("assistant", "tool", "function"):
                continue
            raise BadRequest(f"'{where}.content' is required", param=f"{where}.content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list) or not all(isinstance(p, Mapping) for p in content):
            raise BadRequest(
                f"'{where}.content' must be a string or an array of content parts",
                param=f"{where}.content",
            )


def _check_prompt(prompt: Any) -> None:
    if isinstance(prompt, str) and prompt:
        return
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        return
    raise BadRequest("'prompt' must be a non-empty string or array of strings", param="prompt")
