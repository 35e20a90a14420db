"""Pure request/response shaping: bytes in, bytes out, no sockets.

The gateway owns only ``model`` (replaced by the backend's upstream name) and, for streams, asks
the upstream for a usage chunk; every other field the client sent is passed through untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.types import Usage


def upstream_body(body: Mapping[str, Any], model: str, *, stream: bool) -> bytes:
    out = dict(body)
    out["model"] = model
    if stream:
        options = body.get("stream_options")
        merged = dict(options) if isinstance(options, Mapping) else {}
        merged["include_usage"] = True
        out["stream_options"] = merged
    return orjson.dumps(out)


def parse_usage(usage: Any) -> Usage | None:
    if not isinstance(usage, Mapping):
        return None
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    details_in = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    details_out = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
    cached = details_in.get("cached_tokens", 0) if isinstance(details_in, Mapping) else 0
    reasoning = details_out.get("reasoning_tokens", 0) if isinstance(details_out, Mapping) else 0
    return Usage(
        prompt_tokens=max(prompt, 0),
        completion_tokens=max(completion, 0),
        cached_tokens=cached if isinstance(cached, int) and cached > 0 else 0,
        reasoning_tokens=reasoning if isinstance(reasoning, int) and reasoning > 0 else 0,
    )


class MalformedUpstream(ValueError):
    """The upstream answered 200 with a body that is not what the OpenAI API returns."""


def parse_json_response(body: bytes) -> tuple[Usage | None, str]:
    """Return the usage and the answer text (for estimating usage when it is missing)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedUpstream(f"invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise MalformedUpstream("JSON body is not an object")
    return parse_usage(data.get("usage")), _answer_text(data)


def _answer_text(data: Mapping[str, Any]) -> str:
    choices = data.get("choices")
    if not isinstance(choices, list):
        return ""
    parts: list[str] = []
    for choice in choices:
        if not isinstance(choice, Mapping):
            continue
        message = choice.get("message")
        if isinstance(message, Mapping) and isinstance(message.get("content"), str):
            parts.append(message["content"])
        elif isinstance(choice.get("text"), str):
            parts.append(choice["text"])
    return "".join(parts)


@dataclass(slots=True)
class SseFilter:
    """Splits an upstream SSE byte stream into events as they complete.

    It records the usage chunk, and drops it when the client did not ask for usage (the gateway
    asked on its behalf). Events pass through the moment their closing blank line arrives.
    """

    client_wants_usage: bool
    usage: Usage | None = None
    text_chars: int = 0
    saw_done: bool = False
    _pending: bytes = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk
        end = data.rfind(b"\n\n")
        if end < 0:
            self._pending = data
            return b""
        complete, self._pending = data[: end + 2], data[end + 2 :]
        if not _has_usage(complete) and b"[DONE]" not in complete:
            self.text_chars += _content_chars(complete)
            return complete
        kept: list[bytes] = []
        for event in complete.split(b"\n\n")[:-1]:
            if self._inspect(event):
                kept.append(event + b"\n\n")
        return b"".join(kept)

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return rest

    def _inspect(self, event: bytes) -> bool:
        """Return whether to pass the event on."""
        payload = _data_payload(event)
        if payload is None:
            return True
        if payload.strip() == b"[DONE]":
            self.saw_done = True
            return True
        self.text_chars += _content_chars(event)
        if not _has_usage(payload):
            return True
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return True
        if not isinstance(data, dict):
            return True
        usage = parse_usage(data.get("usage"))
        if usage is None:
            return True
        self.usage = usage
        usage_only = not data.get("choices")
        return self.client_wants_usage or not usage_only


def _has_usage(data: bytes) -> bool:
    # Chunks carry "usage":null until the usage chunk; only an object is worth parsing.
    return b'"usage":{' in data or b'"usage": {' in data


def _data_payload(event: bytes) -> bytes | None:
    lines = [line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


def _content_chars(events: bytes) -> int:
    # A cheap proxy for the answer's length, used only when usage has to be estimated.
    count = 0
    start = events.find(b'"content":"')
    while start >= 0:
        end = events.find(b'"', start + 11)
        if end < 0:
            break
        count += end - start - 11
        start = events.find(b'"content":"', end)
    return count
