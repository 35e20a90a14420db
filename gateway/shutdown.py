"""Graceful shutdown: drain, then stop listening, then let in-flight requests finish.

On the first SIGTERM (or SIGINT) the gateway

1. starts draining: ``/readyz`` answers 503 at once, so load balancers stop sending traffic,
   while the listener stays open and every request (new or in flight) is still served;
2. after ``drain_s`` closes the listener (new connections are refused) and asks idle keep-alive
   connections to close; requests in flight, streams included, continue;
3. waits up to ``shutdown_grace_s`` for them, cancels what is left (an interrupted stream's
   upstream request is closed like on a client disconnect), runs the app's shutdown and exits 0.

A second signal skips the drain delay; a second SIGINT during step 3 cancels at once.
uvicorn's own ``Server`` re-raises a caught signal after shutdown (the process then dies *by*
the signal); this one exits normally instead, so a clean drain exits 0.

With ``workers > 1`` uvicorn's supervisor owns the signals: on SIGTERM it sends SIGTERM to every
worker, and each worker (a plain uvicorn ``Server``) closes its listener at once and waits up to
``shutdown_grace_s`` for its requests in flight. There is no drain phase (``drain_s`` is
ignored): put a pre-stop delay in front of the SIGTERM instead (the Helm chart's ``preStop``).
"""

from __future__ import annotations

import logging
import math
import signal
import time
from dataclasses import dataclass
from types import FrameType

import uvicorn

from gateway.settings import Settings

log = logging.getLogger("gateway")


@dataclass(slots=True)
class Drain:
    """Shared by the server (which starts it) and the app (whose /readyz reads it)."""

    started: float | None = None

    @property
    def draining(self) -> bool:
        return self.started is not None

    def begin(self) -> None:
        if self.started is None:
            self.started = time.monotonic()


class GracefulServer(uvicorn.Server):
    """A uvicorn server that drains for ``drain_s`` before it stops accepting connections."""

    def __init__(self, config: uvicorn.Config, drain: Drain, drain_s: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.drain_s = drain_s

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.drain.draining and self.drain_s > 0:
            self.drain.begin()
            log.info("signal %d: draining for %g s (readiness 503), then closing", sig, self.drain_s)
            return
        self.drain.begin()
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        started = self.drain.started
        if started is not None and not self.should_exit and time.monotonic() - started >= self.drain_s:
            log.info("drain over: closing the listener, waiting for requests in flight")
            self.should_exit = True
        return await super().on_tick(counter)


def serve(settings: Settings, *, log_level: str = "info") -> None:
    """Run the gateway until a signal stops it (``gateway serve``)."""
    grace_s = math.ceil(settings.shutdown_grace_s)
    if settings.workers > 1:
        uvicorn.run(
            "gateway.app:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="uvloop",
            http="httptools",
            access_log=settings.access_log,
            timeout_graceful_shutdown=grace_s,
            log_level=log_level,
        )
        return
    from gateway.app import app_from_env

    drain = Drain()
    config = uvicorn.Config(
        app_from_env(drain=drain),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=settings.access_log,
        timeout_graceful_shutdown=grace_s,
        log_level=log_level,
    )
    server = GracefulServer(config, drain, settings.drain_s)
    server.run()
    if not server.started:
        raise SystemExit(3)  # uvicorn's start-up failure code: the port, or the app, is unusable
