"""The simulator's HTTP/1.1 server: a raw asyncio Protocol with httptools parsing.

Keep-alive and pipelining are supported (requests on one connection are answered in order).
Instant replies are written straight from `data_received`; replies with delays are played by
one task per connection, which is cancelled when the client goes away (counted as a client
disconnect when a completion was still being answered).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, cast

import httptools

from gateway.simulator.answers import Encoding, Tokens, load_encoding
from gateway.simulator.app import SimulatorApp
from gateway.simulator.replies import End, Reply, error_reply
from gateway.simulator.settings import SimulatorSettings

_MAX_BODY = 32 * 1024 * 1024
_MAX_QUEUED = 64  # pipelined requests waiting on one connection before we stop reading


class _Request:
    __slots__ = ("body", "keep", "method", "url")

    def __init__(self, method: bytes, url: bytes, body: bytes, keep: bool) -> None:
        self.method = method
        self.url = url
        self.body = body
        self.keep = keep


class SimulatorProtocol(asyncio.Protocol):
    def __init__(self, app: SimulatorApp, connections: set[SimulatorProtocol]) -> None:
        self.app = app
        self.connections = connections
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.body_size = 0
        self.queue: deque[_Request] = deque()
        self.task: asyncio.Task[None] | None = None
        self.current: Reply | None = None  # completion being answered by `task`
        self.closed = False
        self.closing_by_us = False
        self.paused = False

    # -- transport events -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses but have the same methods
        self.transport = cast(asyncio.Transport, transport)
        self.connections.add(self)
        stats = self.app.stats
        stats.open_connections += 1
        stats.connections_total += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.connections.discard(self)
        stats = self.app.stats
        stats.open_connections -= 1
        if self.current is not None:
            self._finish(self.current, completed=False)
            if not self.closing_by_us:
                stats.client_disconnects += 1
        if self.task is not None:
            self.task.cancel()
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "protocol upgrades are not supported")
            return
        except httptools.HttpParserError as exc:
            self._refuse(413 if self.body_size > _MAX_BODY else 400, f"bad HTTP request: {exc}")
            return
        if self.task is None:
            self._drain()

    # -- httptools callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []
        self.body_size = 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 6 and name.lower() == b"expect" and value.lower() == b"100-continue":
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > _MAX_BODY:
            raise httptools.HttpParserError("body too large")
        self.body.append(body)

    def on_message_complete(self) -> None:
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.queue.append(_Request(self.parser.get_method(), self.url, body, self.parser.should_keep_alive()))
        if len(self.queue) > _MAX_QUEUED and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    # -- answering --------------------------------------------------------------------------
    def _refuse(self, status: int, message: str) -> None:
        if self.transport is None or self.closed:
            return
        reply = error_reply(status, message, "invalid_request_error", keep=False)
        self.transport.write(reply.segments[0][1])
        self.closing_by_us = True
        self.transport.close()

    def _drain(self) -> None:
        """Answer queued requests in order until one needs time (then a task takes over)."""
        transport = self.transport
        assert transport is not None
        app = self.app
        while self.queue and not self.closed:
            req = self.queue.popleft()
            reply = app.handle(req.method, req.url, req.body, req.keep)
            if reply.model is not None:
                app.stats.in_flight += 1
                app.stats.in_flight_by_model[reply.model] += 1
            if reply.instant:
                for _, data in reply.segments:
                    transport.write(data)
                if reply.model is not None:
                    self._finish(reply, completed=_completed(reply))
                if reply.end is not End.KEEP:
                    self._end(reply.end)
                    return
                continue
            self.current = reply if reply.model is not None else None
            self.task = asyncio.get_running_loop().create_task(self._play(reply))
            return
        if self.paused and not self.closed:
            self.paused = False
            transport.resume_reading()

    async def _play(self, reply: Reply) -> None:
        transport = self.transport
        assert transport is not None
        for delay, data in reply.segments:
            if delay > 0:
                await asyncio.sleep(delay)
            if self.closed:
                return
            transport.write(data)
        if self.closed:
            return
        if reply.model is not None:
            self._finish(reply, completed=_completed(reply))
        self.task = None
        if reply.end is not End.KEEP:
            self._end(reply.end)
            return
        self._drain()

    def _finish(self, reply: Reply, completed: bool) -> None:
        stats = self.app.stats
        stats.in_flight -= 1
        if reply.model is not None:
            stats.in_flight_by_model[reply.model] -= 1
        if completed:
            stats.completed += 1
        else:
            stats.aborted += 1
        self.current = None

    def _end(self, end: End) -> None:
        assert self.transport is not None
        self.closing_by_us = True
        self.queue.clear()
        if end is End.ABORT:
            self.transport.abort()
        else:
            self.transport.close()


def _completed(reply: Reply) -> bool:
    """Answered to the end (any status), as opposed to a reset or a close without answer."""
    return reply.end is not End.ABORT and reply.status != 0


class RunningSimulator:
    """A started simulator: `port` is the bound port (useful with port 0)."""

    def __init__(
        self, app: SimulatorApp, server: asyncio.Server, connections: set[SimulatorProtocol]
    ) -> None:
        self.app = app
        self.server = server
        self.connections = connections
        sock = server.sockets[0].getsockname()
        self.host: str = sock[0]
        self.port: int = sock[1]

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        self.server.close()
        # close keep-alive connections too, or wait_closed() would wait for the clients
        for proto in list(self.connections):
            proto.closing_by_us = True
            if proto.transport is not None:
                proto.transport.abort()
        await self.server.wait_closed()


async def start_simulator(
    settings: SimulatorSettings, host: str = "127.0.0.1", port: int = 0, encoding: Encoding | None = None
) -> RunningSimulator:
    """Start listening and return at once; the caller stops it with `await sim.stop()`."""
    app = SimulatorApp(settings, Tokens(encoding if encoding is not None else load_encoding()))
    loop = asyncio.get_running_loop()
    connections: set[SimulatorProtocol] = set()
    server = await loop.create_server(
        lambda: SimulatorProtocol(app, connections), host, port, backlog=4096, reuse_address=True
    )
    return RunningSimulator(app, server, connections)


@contextlib.asynccontextmanager
async def running_simulator(
    settings: SimulatorSettings, host: str = "127.0.0.1", port: int = 0, encoding: Encoding | None = None
) -> AsyncIterator[RunningSimulator]:
    sim = await start_simulator(settings, host, port, encoding)
    try:
        yield sim
    finally:
        await sim.stop()


async def serve(
    settings: SimulatorSettings,
    host: str = "127.0.0.1",
    port: int = 9100,
    ready: asyncio.Event | None = None,
    *,
    lifetime_s: float = 0.0,
    announce: bool = False,
) -> None:
    """Serve until cancelled, SIGINT/SIGTERM (when run as the main loop) or `lifetime_s` seconds."""
    sim = await start_simulator(settings, host, port)
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()

    def _stop(*_: Any) -> None:
        if not stop.done():
            stop.set_result(None)

    handled: list[signal.Signals] = []
    if announce:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, _stop)
                handled.append(sig)
        print(f"simulator listening on {sim.base_url}", flush=True)
    if lifetime_s > 0:
        loop.call_later(lifetime_s, _stop)
    if ready is not None:
        ready.set()
    try:
        await stop
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await sim.stop()
