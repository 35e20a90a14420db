"""One completion request, start to finish: parse -> decide -> forward -> respond -> record.

Each step hands a frozen value to the next and never calls back. The request is recorded exactly
once, when its answer (or its error) has been sent, streams and client disconnects included.
A client that disconnects cancels the work in flight, and with it the upstream request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.auth import ApiKey
from gateway.cost import cost_usd, estimate_from_chars, estimate_usage
from gateway.errors import GatewayError, NotFound, NotReady, PayloadTooLarge, UpstreamError, UpstreamTimeout
from gateway.forward import UPSTREAM_ERRORS, Committed, classify_exception, next_chunk, read_rest
from gateway.parse import parse_request, request_id
from gateway.state import Active, GatewayState
from gateway.translate import MalformedUpstream, SseFilter, parse_json_response
from gateway.types import Attempt, ChatRequest, Decision, Endpoint, RequestRecord, StageTimings, Usage

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
CLIENT_CLOSED = 499  # nginx's code for "client closed request"


def header_map(request: Request) -> dict[str, str]:
    """The request's headers as a plain dict, built once (ASGI names are already lower case).

    Starlette's ``Headers.get`` scans the list and raises internally on a miss; the gateway
    looks up several headers per request, most of them absent.
    """
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in request.scope["headers"]}


async def read_body(request: Request, limit: int, headers: Mapping[str, str] | None = None) -> bytes:
    declared = (headers if headers is not None else request.headers).get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(slots=True)
class _Flight:
    """The mutable notes of one request in flight; frozen into a RequestRecord at the end."""

    rid: str
    started: float
    started_unix: float
    active: Active
    chat: ChatRequest | None = None
    decision: Decision | None = None
    committed: Committed | None = None
    status: int = 200
    usage: Usage | None = None
    error_type: str | None = None
    ttft_s: float | None = None
    upstream_s: float = 0.0
    attempts: tuple[Attempt, ...] = ()
    done: bool = False
    key: ApiKey | None = None  # the client's key, when keys are configured
    extra_headers: dict[str, str] = field(default_factory=dict)

    def failed(self, exc: GatewayError) -> None:
        self.status, self.error_type = exc.status, exc.error_type
        if exc.attempts:
            self.attempts = exc.attempts


class Proxy:
    def __init__(self, state: GatewayState) -> None:
        self.state = state

    async def handle(self, request: Request, endpoint: Endpoint) -> Response:
        headers = header_map(request)
        active = self.state.active  # one policy for the whole request, even across a reload
        if active is None:
            rid = request_id(headers.get("x-request-id"))
            return self._error(NotReady("the gateway is still loading its policy and classifier"), rid)
        flight = _Flight(
            rid=request_id(headers.get("x-request-id")),
            started=time.perf_counter(),
            started_unix=time.time(),
            active=active,
        )
        metrics = self.state.metrics
        if metrics is not None:
            metrics.in_flight.inc()
        streaming = False
        try:
            # Before the body is read: a request without a valid key costs no upload and no parsing.
            if self.state.access is not None:
                flight.key = self.state.access.authenticate(headers)
            raw = await read_body(request, self.state.settings.max_body_bytes, headers)
            watcher = _DisconnectWatcher(request)
            try:
                response: Response | None = await self._serve(raw, headers, endpoint, flight)
            except asyncio.CancelledError:
                if not watcher.fired:
                    raise
                response = None
            finally:
                watcher.stop()
            if response is None:  # the client disconnected
                flight.status, flight.error_type = CLIENT_CLOSED, "client_disconnected"
                self._finish(flight)
                return Response(status_code=CLIENT_CLOSED)
            streaming = isinstance(response, StreamingResponse)
            return response
        except GatewayError as exc:
            flight.failed(exc)
            self._finish(flight)
            return self._error(exc, flight.rid, flight)
        finally:
            if not streaming:
                if metrics is not None:
                    metrics.in_flight.dec()
                if not flight.done:
                    flight.status, flight.error_type = CLIENT_CLOSED, "client_disconnected"
                    self._finish(flight)

    async def _serve(
        self, raw: bytes, headers: Mapping[str, str], endpoint: Endpoint, flight: _Flight
    ) -> Response:
        runtime = flight.active.runtime
        chat = parse_request(
            raw,
            endpoint,
            rid=flight.rid,
            default_model=self.state.default_model,
            route_override=headers.get(runtime.override_header),
        )
        key, access = flight.key, self.state.access
        if key is not None:
            chat = dataclasses.replace(chat, api_key_id=key.id)
        flight.chat = chat
        if chat.model not in runtime.virtual_models and chat.model not in runtime.pinnable:
            raise NotFound(
                f"model {chat.model!r} is not served here; GET /v1/models lists the models you can ask for",
                param="model",
                code="model_not_found",
            )
        if key is not None and key.limits is not None and access is not None:
            await access.admit_request(key)
        decision = await flight.active.pipeline.decide(chat)
        if key is not None and key.restricted and access is not None:
            decision = await access.admit(key, chat, decision, runtime)
        flight.decision = decision
        self.state.recorder.decided(decision)
        committed = await flight.active.forwarder.open(chat, decision)
        flight.committed, flight.attempts, flight.status = committed, committed.attempts, committed.status
        if chat.stream and committed.status < 400:
            relay = self._relay(flight, committed, chat, decision)
            return _RelayResponse(
                relay,
                status_code=committed.status,
                media_type="text/event-stream",
                headers={**self._headers(flight, decision, committed), **_SSE_HEADERS},
                on_end=functools.partial(self._abandoned, flight, committed),
            )
        return await self._whole(flight, committed, decision)

    async def _whole(self, flight: _Flight, committed: Committed, decision: Decision) -> Response:
        headers = self._headers(flight, decision, committed)
        try:
            body = await read_rest(committed)
            flight.upstream_s = time.perf_counter() - committed.started
            flight.ttft_s = time.perf_counter() - flight.started
            if committed.status < 400:
                try:
                    usage, answer = parse_json_response(body)
                except MalformedUpstream as exc:
                    raise UpstreamError(
                        f"backend {committed.backend.target.name!r} returned an unusable answer: {exc}",
                        code="upstream_malformed",
                    ) from None
                flight.usage = usage or estimate_usage(self.state.counter, decision.prompt_tokens, answer)
                headers["x-gateway-cost-usd"] = f"{cost_usd(committed.backend.target, flight.usage):.8f}"
            else:
                flight.error_type = "upstream_client_error"
        except GatewayError as exc:
            flight.upstream_s = time.perf_counter() - committed.started
            flight.failed(exc)
            last = committed.attempts[-1]
            cause = {"upstream_total_timeout": "total_timeout", "upstream_stalled": "first_byte_timeout"}.get(
                exc.code or "", "protocol_error"
            )
            flight.attempts = (*committed.attempts[:-1], Attempt(last.backend, cause, last.status))
            self._finish(flight)
            return self._error(exc, flight.rid, flight)
        finally:
            await committed.aclose()
        self._finish(flight)
        return Response(
            body,
            status_code=committed.status,
            headers=headers,
            media_type=committed.response.headers.get("content-type", "application/json"),
        )

    async def _relay(
        self, flight: _Flight, committed: Committed, chat: ChatRequest, decision: Decision
    ) -> AsyncIterator[bytes]:
        sse = SseFilter(client_wants_usage=chat.include_usage)
        target = committed.backend.target
        try:
            first = sse.feed(committed.first_chunk)
            flight.ttft_s = time.perf_counter() - flight.started
            if first:
                yield first
            try:
                while (chunk := await next_chunk(committed)) is not None:
                    out = sse.feed(chunk)
                    if out:
                        yield out
                rest = sse.flush()
                if rest:
                    yield rest
                if not sse.saw_done:
                    raise UpstreamError(f"backend {target.name!r} ended its stream without [DONE]")
            except UPSTREAM_ERRORS as exc:
                stalled = classify_exception(exc) == "first_byte_timeout"
                error: GatewayError = (
                    UpstreamTimeout(
                        f"backend {target.name!r} stalled mid-stream", code="upstream_stream_stalled"
                    )
                    if stalled
                    else UpstreamError(
                        f"backend {target.name!r} broke off the stream", code="upstream_stream_broken"
                    )
                )
                self._interrupted(flight, committed, error)
                yield _sse_error(error)
            except GatewayError as exc:
                self._interrupted(flight, committed, exc)
                yield _sse_error(exc)
        except BaseException:
            flight.status, flight.error_type = CLIENT_CLOSED, "client_disconnected"
            raise
        finally:
            flight.usage = sse.usage or estimate_from_chars(decision.prompt_tokens, sse.text_chars)
            await self._end_stream(flight, committed)

    async def _abandoned(self, flight: _Flight, committed: Committed) -> None:
        # The response ended before the relay ran (the client left before the body started).
        if not flight.done:
            flight.status, flight.error_type = CLIENT_CLOSED, "client_disconnected"
            await self._end_stream(flight, committed)

    async def _end_stream(self, flight: _Flight, committed: Committed) -> None:
        """Close the upstream and record the request, once, however the stream ended."""
        if flight.done:
            return
        flight.upstream_s = time.perf_counter() - committed.started
        await committed.aclose()
        if self.state.metrics is not None:
            self.state.metrics.in_flight.dec()
        self._finish(flight)

    @staticmethod
    def _interrupted(flight: _Flight, committed: Committed, exc: GatewayError) -> None:
        flight.status, flight.error_type = exc.status, exc.error_type
        last = committed.attempts[-1]
        flight.attempts = (*committed.attempts[:-1], Attempt(last.backend, "stream_interrupted", last.status))

    def _finish(self, flight: _Flight) -> None:
        if flight.done:
            return
        flight.done = True
        if flight.key is not None and flight.key.limits is not None and self.state.access is not None:
            spent = flight.committed.backend.target if flight.committed is not None else None
            self.state.access.settle(flight.key, flight.usage or Usage(), spent)
        recorder = self.state.recorder
        if recorder.metrics is None and recorder.log is None:
            return
        usage = flight.usage or Usage()
        committed, decision, chat = flight.committed, flight.decision, flight.chat
        target = committed.backend.target if committed is not None else None
        cost = cost_usd(target, usage) if target is not None else 0.0
        baseline = flight.active.runtime.baseline
        baseline_cost = cost_usd(baseline, usage) if baseline is not None and target is not None else cost
        prompt_hash = prompt_sample = None
        if recorder.log is not None and chat is not None:
            prompt = chat.body.get("messages", chat.body.get("prompt"))
            prompt_hash, prompt_sample = recorder.log.prompt_fields(prompt)
        recorder.finished(
            RequestRecord(
                request_id=flight.rid,
                started_unix=flight.started_unix,
                route=decision.route if decision else "none",
                backend=target.name if target else "none",
                reason=decision.reason.value if decision else "none",
                confidence=decision.confidence if decision else None,
                status=flight.status,
                stream=bool(chat and chat.stream),
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cached_tokens=usage.cached_tokens,
                reasoning_tokens=usage.reasoning_tokens,
                usage_estimated=usage.estimated,
                cost_usd=cost,
                baseline_cost_usd=baseline_cost,
                duration_s=time.perf_counter() - flight.started,
                upstream_s=flight.upstream_s,
                ttft_s=flight.ttft_s,
                attempts=flight.attempts,
                policy_version=flight.active.runtime.version,
                error_type=flight.error_type,
                prompt_sha256=prompt_hash,
                prompt_redacted=prompt_sample,
                api_key_id=flight.key.id if flight.key is not None else None,
                timings=decision.timings if decision else StageTimings(),
            )
        )

    @staticmethod
    def _headers(flight: _Flight, decision: Decision, committed: Committed) -> dict[str, str]:
        headers = {
            "x-request-id": flight.rid,
            "x-gateway-route": decision.route,
            "x-gateway-backend": committed.backend.target.name,
            "x-gateway-reason": decision.reason.value,
            "x-gateway-prompt-tokens": str(decision.prompt_tokens),
            "x-gateway-policy-version": flight.active.runtime.version,
        }
        if decision.confidence is not None:
            headers["x-gateway-confidence"] = f"{decision.confidence:.4f}"
        fallbacks = sum(1 for a in committed.attempts if a.cause is not None)
        if fallbacks:
            headers["x-gateway-fallbacks"] = str(fallbacks)
        return headers

    @staticmethod
    def _error(exc: GatewayError, rid: str, flight: _Flight | None = None) -> Response:
        headers = {"x-request-id": rid, **exc.headers}
        decision = flight.decision if flight is not None else None
        committed = flight.committed if flight is not None else None
        if decision is not None:
            headers["x-gateway-route"] = decision.route
            headers["x-gateway-reason"] = decision.reason.value
        if committed is not None:
            headers["x-gateway-backend"] = committed.backend.target.name
        return Response(
            exc.body_bytes(), status_code=exc.status, headers=headers, media_type="application/json"
        )


class _RelayResponse(StreamingResponse):
    """A stream whose upstream is closed and recorded even if its body never started."""

    def __init__(
        self, content: AsyncIterator[bytes], *, on_end: Callable[[], Awaitable[None]], **kwargs: Any
    ) -> None:
        super().__init__(content, **kwargs)
        self._relay = content
        self._on_end = on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._relay.aclose()  # type: ignore[attr-defined]
                await self._on_end()


class _DisconnectWatcher:
    """Cancel the current task if the client disconnects before its answer has started.

    The body has been read, so the next ASGI message can only be ``http.disconnect``. A plain
    task (cheaper than a task group on the hot path); ``stop`` runs without awaiting, so the
    watcher cannot fire between the end of the work and ``stop``.
    """

    __slots__ = ("_owner", "_task", "fired")

    def __init__(self, request: Request) -> None:
        self.fired = False
        self._owner = asyncio.current_task()
        self._task = asyncio.ensure_future(self._watch(request))

    async def _watch(self, request: Request) -> None:
        message = await request.receive()
        if message["type"] == "http.disconnect" and self._owner is not None:
            self.fired = True
            self._owner.cancel()

    def stop(self) -> None:
        self._task.cancel()
        if self.fired and self._owner is not None:
            self._owner.uncancel()


def _sse_error(error: GatewayError) -> bytes:
    return b"data: " + error.body_bytes() + b"\n\n"
