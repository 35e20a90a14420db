"""Replies as timed byte segments, and the faults that reshape them (pure; no sockets).

A `Reply` is a list of `(delay_s, bytes)` written in order, then an ending: keep the
connection, close it, or abort it (TCP reset). The server plays it; faults are functions
from one reply to another.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from gateway.simulator.faults import FaultKind, FaultSpec

REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    413: b"Payload Too Large",
    429: b"Too Many Requests",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
}
JSON = b"application/json"
SSE = b"text/event-stream; charset=utf-8"
CHUNK_END = b"0\r\n\r\n"


class End(enum.Enum):
    KEEP = "keep"
    CLOSE = "close"
    ABORT = "abort"


@dataclass(frozen=True, slots=True)
class Reply:
    segments: tuple[tuple[float, bytes], ...]
    end: End = End.KEEP
    status: int = 200
    model: str | None = None  # set for completion requests (in-flight accounting)

    @property
    def instant(self) -> bool:
        return all(delay <= 0 for delay, _ in self.segments)


def head(status: int, content_type: bytes, length: int | None, keep: bool, extra: bytes = b"") -> bytes:
    framing = b"Content-Length: %d\r\n" % length if length is not None else b"Transfer-Encoding: chunked\r\n"
    if length is None:
        framing += b"Cache-Control: no-cache\r\n"
    return b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s%s%s\r\n" % (
        status,
        REASONS.get(status, b"Error"),
        content_type,
        framing,
        extra,
        b"" if keep else b"Connection: close\r\n",
    )


def body_reply(
    status: int,
    body: bytes,
    keep: bool,
    *,
    delay_s: float = 0.0,
    extra: bytes = b"",
    content_type: bytes = JSON,
    model: str | None = None,
) -> Reply:
    return Reply(
        ((delay_s, head(status, content_type, len(body), keep, extra) + body),),
        End.KEEP if keep else End.CLOSE,
        status,
        model,
    )


def error_body(message: str, err_type: str, code: str | None = None, param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": err_type, "param": param, "code": code}})


def error_reply(
    status: int,
    message: str,
    err_type: str,
    keep: bool,
    *,
    code: str | None = None,
    param: str | None = None,
    model: str | None = None,
) -> Reply:
    extra = b"Retry-After: 1\r\n" if status == 429 else b""
    return body_reply(status, error_body(message, err_type, code, param), keep, extra=extra, model=model)


def stream_reply(events: Sequence[bytes], delays: Sequence[float], keep: bool, model: str) -> Reply:
    """SSE events (each `data: ...\\n\\n`) with the delay before each; chunked framing.
    delays[0] is the time to first byte: the head goes with the first event."""
    segments: list[tuple[float, bytes]] = [(delays[0], head(200, SSE, None, keep))]
    segments += [
        (d if i else 0.0, b"%x\r\n%s\r\n" % (len(e), e))
        for i, (e, d) in enumerate(zip(events, delays, strict=True))
    ]
    segments.append((0.0, CHUNK_END))
    return Reply(tuple(segments), End.KEEP if keep else End.CLOSE, 200, model)


def coalesce(reply: Reply) -> Reply:
    """Join segments that follow each other without delay (fewer writes)."""
    groups: list[tuple[float, list[bytes]]] = []
    for delay, data in reply.segments:
        if groups and delay <= 0:
            groups[-1][1].append(data)
        else:
            groups.append((delay, [data]))
    segments = tuple((delay, b"".join(parts)) for delay, parts in groups)
    return Reply(segments, reply.end, reply.status, reply.model)


def _split_body(reply: Reply) -> list[tuple[float, bytes]]:
    """A Content-Length reply as [head, first half of body, second half]."""
    (delay, data), *_ = reply.segments
    cut = data.index(b"\r\n\r\n") + 4
    body = data[cut:]
    half = len(body) // 2
    return [(delay, data[:cut]), (0.0, body[:half]), (0.0, body[half:])]


def apply_timing_fault(reply: Reply, fault: FaultSpec, streamed: bool) -> Reply:
    """slow_first_byte, stall_mid_stream and reset_mid_stream reshape a healthy reply."""
    delay = fault.delay_ms / 1000.0
    segments = list(reply.segments) if streamed else _split_body(reply)
    # index of the segment that follows `after_chunks` events (the head is segment 0)
    at = min(fault.after_chunks + 1, len(segments) - 1) if streamed else 2
    if fault.kind is FaultKind.SLOW_FIRST_BYTE:
        segments[0] = (segments[0][0] + delay, segments[0][1])
        return Reply(tuple(segments), reply.end, reply.status, reply.model)
    if fault.kind is FaultKind.STALL_MID_STREAM:
        segments[at] = (segments[at][0] + delay, segments[at][1])
        return Reply(tuple(segments), reply.end, reply.status, reply.model)
    if fault.kind is FaultKind.RESET_MID_STREAM:
        return Reply(tuple(segments[:at]), End.ABORT, reply.status, reply.model)
    raise ValueError(f"not a timing fault: {fault.kind}")


def malformed_json_reply(keep: bool, delay_s: float, model: str) -> Reply:
    body = (
        b'{"id":"chatcmpl-broken","object":"chat.completion","choices":[{"index":0,"message":{"role":"assis'
    )
    return body_reply(200, body, keep, delay_s=delay_s, model=model)


def malformed_sse_reply(first_event: bytes, keep: bool, delay_s: float, model: str) -> Reply:
    events = [
        first_event,
        b'data: {"id":"chatcmpl-broken","choices":[{"delta":{"content":"unterminated\n\n',
        b"this line is not an SSE field\n\n",
        b"data: \xff\xfe not utf-8 \x00\n\n",
        b"event: \n: comment\ndata: }{\n\n",
    ]
    return stream_reply(events, [delay_s] + [0.0] * (len(events) - 1), keep, model)
