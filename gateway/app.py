"""``create_app``: the one place that builds the gateway's state.

Importing this module does nothing. The lifespan loads the policy (a bad policy stops start-up
with a clear message), opens the pooled upstream client, then loads the classifier in a worker
thread while ``/healthz`` already answers; ``/readyz`` turns 200 when everything is loaded.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar

import aiohttp
import httpx
from fastapi import FastAPI, Request
from httpx_aiohttp import AiohttpTransport
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from classifiers.errors import ClassifierError
from gateway.admin import admin_router
from gateway.api import router
from gateway.classify import build_classifier
from gateway.config import Policy, load_policy
from gateway.decision_log import DecisionLog
from gateway.errors import BadRequest, GatewayError, MethodNotAllowed, NotFound
from gateway.limits import open_access
from gateway.metrics import GatewayMetrics
from gateway.models import ClassifierFactory, load_models
from gateway.multiproc import mark_worker_dead
from gateway.proxy import Proxy
from gateway.record import Recorder
from gateway.settings import Settings
from gateway.shutdown import Drain
from gateway.state import GatewayState
from gateway.tokens import TokenCounter
from gateway.types import Endpoint

log = logging.getLogger("gateway")


def _decision_log(settings: Settings) -> DecisionLog | None:
    return DecisionLog.open(
        settings.decision_log,
        max_mb=settings.decision_log_max_mb,
        backups=settings.decision_log_backups,
        sample_rate=settings.decision_log_sample_rate,
        workers=settings.workers,
    )


def _transport(injected: httpx.AsyncBaseTransport | None) -> httpx.AsyncBaseTransport:
    """The one pooled upstream transport. Per-backend timeouts travel with each request.

    httpx's request/response types are the interface; aiohttp does the HTTP/1.1 work underneath,
    since its C parser costs a fraction of the CPU per proxied request that httpcore's
    pure-Python stack does (loadtest/RESULTS.md).
    """
    return injected if injected is not None else AiohttpTransport(client=_aiohttp_session)


def _aiohttp_session() -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=4096, limit_per_host=0, keepalive_timeout=30, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)


def create_app(
    settings: Settings,
    *,
    policy: Policy | None = None,
    classifier_factory: ClassifierFactory | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    registry: CollectorRegistry | None = None,
    drain: Drain | None = None,
) -> FastAPI:
    """Build the app. Tests inject a policy, a fake classifier factory and a mock transport."""
    registry = registry if registry is not None else CollectorRegistry()
    factory = classifier_factory or build_classifier

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = policy if policy is not None else load_policy(settings.policy_path)
        metrics = GatewayMetrics(registry) if settings.metrics_enabled else None
        decision_log = _decision_log(settings)
        state = GatewayState(
            classifier_factory=factory,
            settings=settings,
            registry=registry,
            metrics=metrics,
            recorder=Recorder(metrics, decision_log),
            counter=TokenCounter(),
            transport=_transport(transport),
            drain=drain if drain is not None else Drain(),
        )
        app.state.gateway = state
        state.access = await open_access(settings, metrics, loaded.routes)
        loader = asyncio.create_task(_load(state, loaded, factory))
        flusher = asyncio.create_task(_flush_every_second(decision_log)) if decision_log else None
        try:
            yield
        finally:
            loader.cancel()
            if flusher is not None:
                flusher.cancel()
            await asyncio.gather(loader, *([flusher] if flusher else []), return_exceptions=True)
            state.active = None
            await state.transport.aclose()
            if state.access is not None:
                await state.access.aclose()
            if state.classifier is not None:
                await state.classifier.aclose()
            for step in state.cost_quality.values():
                await step.classifier.aclose()
            if decision_log is not None:
                decision_log.close()
            mark_worker_dead()

    app = FastAPI(
        title="LLM routing gateway",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.include_router(router)
    app.include_router(admin_router)
    app.add_middleware(HotPaths)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    return app


class HotPaths:
    """Serve the completion endpoints straight from ASGI, skipping the framework's per-request layers.

    The routes stay declared on the router too (for the OpenAPI schema); this only takes the
    shorter way to the same handler. Unexpected errors still reach the server-error handler.
    """

    _ENDPOINTS: ClassVar[dict[str, Endpoint]] = {
        "/v1/chat/completions": "chat",
        "/v1/completions": "completions",
    }

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._ENDPOINTS.get(scope.get("path", "")) if scope["type"] == "http" else None
        if endpoint is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        response = await Proxy(scope["app"].state.gateway).handle(request, endpoint)
        await response(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods, in the OpenAI error shape."""
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
    error: GatewayError
    if status == 404:
        error = NotFound(f"no such endpoint: {request.method} {request.url.path}", code="unknown_url")
    elif status == 405:
        error = MethodNotAllowed(
            f"method {request.method} is not allowed on {request.url.path}",
            headers=getattr(exc, "headers", None),  # carries Allow: the methods the path takes
        )
    elif status < 500:
        error = BadRequest(str(getattr(exc, "detail", "bad request")))
    else:
        error = GatewayError("internal error in the gateway; see its logs")
    return Response(
        error.body_bytes(), status_code=error.status, media_type="application/json", headers=error.headers
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # Logged here with its traceback; the client gets no internals.
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    error = GatewayError("internal error in the gateway; see its logs")
    return Response(error.body_bytes(), status_code=500, media_type="application/json")


async def _flush_every_second(log: DecisionLog) -> None:
    """Buffered decision-log lines reach the file within about a second, busy or idle."""
    while True:
        await asyncio.sleep(1.0)
        log.flush()


async def _load(state: GatewayState, policy: Policy, factory: ClassifierFactory) -> None:
    try:
        await load_models(state, policy, factory)
        state.activate(policy)
        # Everything loaded so far (modules, models, the policy) lives as long as the process:
        # move it out of the collector's reach, so full collections scan only per-request garbage.
        gc.freeze()
        log.info("policy %s (%s) active", policy.name, state.active.runtime.version if state.active else "?")
    except (ClassifierError, GatewayError, OSError, ValueError, RuntimeError) as exc:
        # The gateway stays up and not ready; /readyz says why.
        state.load_error = f"{type(exc).__name__}: {exc}"
        log.error("loading the classifier failed: %s", state.load_error)


def app_from_env(drain: Drain | None = None) -> FastAPI:
    """Entry point for uvicorn workers: settings come from GATEWAY_* environment variables."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs every upstream request at INFO
    return create_app(Settings.from_env(), drain=drain)
