"""Forwarding: try the decision's backends in order, commit to the first that answers, relay it.

The forwarder owns every upstream response it opens and closes it in ``finally`` whatever the
client does. A request is *committed* to a backend when that backend's first body bytes arrive;
before that, a connect error, a timeout, a 5xx, a 429 or a broken response moves on to the next
backend (at most ``forwarding.max_attempts`` tries); after it, nothing is retried and a failing
stream ends with an error event. See docs/failure-semantics.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import anyio
import httpx

from gateway.backends.openai import OpenAIBackend
from gateway.errors import (
    GatewayError,
    NoHealthyBackend,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from gateway.types import Attempt, ChatRequest, Decision

# Statuses that mean "this request is wrong", not "this backend is unwell": passed to the client.
CLIENT_FAULT_STATUSES = frozenset({400, 413, 422})
_TIMEOUT_CAUSES = frozenset({"connect_timeout", "first_byte_timeout", "total_timeout"})
_MAX_ERROR_BODY = 64 * 1024


class BackendHealth(Protocol):
    """Circuit breakers: whether to try a backend now, and what happened when we did."""

    def allow(self, backend: str) -> bool: ...

    def record(self, backend: str, ok: bool) -> None: ...


class AlwaysHealthy:
    def allow(self, backend: str) -> bool:
        return True

    def record(self, backend: str, ok: bool) -> None:
        return None


@dataclass(slots=True)
class Committed:
    """An upstream response the request is committed to. Close it with ``aclose``."""

    backend: OpenAIBackend
    response: httpx.Response
    first_chunk: bytes
    chunks: AsyncIterator[bytes]
    attempts: tuple[Attempt, ...]
    started: float
    first_byte_at: float
    deadline: float

    @property
    def status(self) -> int:
        return self.response.status_code

    async def aclose(self) -> None:
        # Shielded: a cancelled client must still release the upstream connection.
        with anyio.CancelScope(shield=True):
            await self.response.aclose()


# Everything an upstream exchange can raise: httpx's tree, and aiohttp's (the transport underneath
# maps most of it to httpx's, keeping the original as __cause__).
UPSTREAM_ERRORS: tuple[type[BaseException], ...] = (httpx.HTTPError, aiohttp.ClientError)


def classify_exception(exc: BaseException) -> str:
    """The one translation of foreign upstream errors into the gateway's causes."""
    cause = exc.__cause__ if isinstance(exc.__cause__, aiohttp.ClientError) else exc
    if isinstance(cause, aiohttp.ConnectionTimeoutError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return "connect_timeout"
    if isinstance(cause, aiohttp.ServerTimeoutError | httpx.ReadTimeout | httpx.WriteTimeout):
        return "first_byte_timeout"
    if isinstance(cause, aiohttp.ClientConnectorError | httpx.ConnectError):
        return "connect_error"
    return "protocol_error"


def _status_cause(status: int) -> str:
    if status == 429:
        return "status_429"
    if status >= 500:
        return "status_5xx"
    return "status_4xx"


class Forwarder:
    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        backends: Mapping[str, OpenAIBackend],
        health: BackendHealth | None = None,
        *,
        max_attempts: int = 3,
    ) -> None:
        self.transport = transport
        self.backends = backends
        self.health = health or AlwaysHealthy()
        self.max_attempts = max_attempts

    async def open(self, request: ChatRequest, decision: Decision) -> Committed:
        attempts: list[Attempt] = []
        started = time.perf_counter()
        retry_after: str | None = None
        skipped_open = tries = 0
        for name in decision.backends:
            if tries >= self.max_attempts:
                break
            if not self.health.allow(name):
                skipped_open += 1
                attempts.append(Attempt(name, "circuit_open"))
                continue
            backend = self.backends[name]
            tries += 1
            try:
                committed = await self._try(backend, request, attempts, started)
            except _Retryable as failure:
                if failure.cause != "status_429":  # rate limited is not unwell: no breaker verdict
                    self.health.record(name, ok=False)
                attempts.append(Attempt(name, failure.cause, failure.status))
                retry_after = failure.retry_after or retry_after
                continue
            self.health.record(name, ok=committed.status < 500)
            return committed
        raise self._exhausted(decision, attempts, retry_after, skipped_open)

    async def _try(
        self, backend: OpenAIBackend, request: ChatRequest, attempts: list[Attempt], started: float
    ) -> Committed:
        target = backend.target
        deadline = time.perf_counter() + target.total_s
        try:
            response = await backend.send(
                self.transport,
                request.endpoint,
                request.body,
                stream=request.stream,
                request_id=request.request_id,
            )
        except UPSTREAM_ERRORS as exc:
            raise _Retryable(classify_exception(exc)) from None
        status = response.status_code
        if status >= 400 and status not in CLIENT_FAULT_STATUSES:
            retry_after = response.headers.get("retry-after")
            await _drain_and_close(response)
            raise _Retryable(_status_cause(status), status, retry_after)
        chunks = response.aiter_bytes()
        try:
            first = await anext(chunks, b"")
        except UPSTREAM_ERRORS as exc:
            with anyio.CancelScope(shield=True):
                await response.aclose()
            raise _Retryable(classify_exception(exc)) from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await response.aclose()
            raise
        attempt = Attempt(backend.target.name, None, status)
        return Committed(
            backend=backend,
            response=response,
            first_chunk=first,
            chunks=chunks,
            attempts=(*attempts, attempt),
            started=started,
            first_byte_at=time.perf_counter(),
            deadline=deadline,
        )

    def _exhausted(
        self,
        decision: Decision,
        attempts: list[Attempt],
        retry_after: str | None,
        skipped_open: int,
    ) -> GatewayError:
        tried = "; ".join(f"{a.backend}: {a.cause}" for a in attempts)
        error: GatewayError
        if skipped_open and skipped_open == len(attempts):
            error = NoHealthyBackend(
                f"every backend of route {decision.route!r} is unavailable (circuit open): {tried}"
            )
        else:
            last = next(a.cause for a in reversed(attempts) if a.cause != "circuit_open")
            message = f"no backend of route {decision.route!r} answered: {tried}"
            if last in _TIMEOUT_CAUSES:
                error = UpstreamTimeout(message)
            elif last == "status_429":
                headers = {"retry-after": retry_after} if retry_after else {}
                error = RateLimited(message, code="upstream_rate_limited", headers=headers)
            else:
                error = UpstreamError(message)
        error.attempts = tuple(attempts)
        return error


async def read_rest(committed: Committed) -> bytes:
    """The whole body of a committed non-streaming answer, within the backend's total timeout."""
    parts = [committed.first_chunk]
    try:
        async with asyncio.timeout_at(_loop_deadline(committed.deadline)):
            async for chunk in committed.chunks:
                parts.append(chunk)
    except TimeoutError:
        raise UpstreamTimeout(
            f"backend {committed.backend.target.name!r} did not finish its answer within "
            f"{committed.backend.target.total_s:g} s",
            code="upstream_total_timeout",
        ) from None
    except UPSTREAM_ERRORS as exc:
        name = committed.backend.target.name
        if classify_exception(exc) == "first_byte_timeout":  # idle past first_byte_ms mid-body
            raise UpstreamTimeout(
                f"backend {name!r} stalled in the middle of its answer", code="upstream_stalled"
            ) from None
        raise UpstreamError(f"backend {name!r} broke off its answer ({classify_exception(exc)})") from None
    return b"".join(parts)


def _loop_deadline(perf_deadline: float) -> float:
    return asyncio.get_running_loop().time() + max(perf_deadline - time.perf_counter(), 0.001)


async def next_chunk(committed: Committed) -> bytes | None:
    """The next chunk of a committed stream (None at its end), within the backend's total timeout.

    The deadline bounds the wait itself, so a stream that trickles is cut at the deadline, not
    at the first chunk after it.
    """
    with anyio.move_on_after(max(committed.deadline - time.perf_counter(), 0.0)):
        return await anext(committed.chunks, None)
    target = committed.backend.target
    raise UpstreamTimeout(
        f"backend {target.name!r} did not finish its stream within {target.total_s:g} s",
        code="upstream_total_timeout",
    )


async def _drain_and_close(response: httpx.Response) -> None:
    try:
        with anyio.fail_after(1.0):
            received = 0
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > _MAX_ERROR_BODY:
                    break
    except (httpx.HTTPError, aiohttp.ClientError, TimeoutError):
        pass  # the error status is what matters; its body is best-effort
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()


class _Retryable(Exception):
    def __init__(self, cause: str, status: int | None = None, retry_after: str | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.status = status
        self.retry_after = retry_after
