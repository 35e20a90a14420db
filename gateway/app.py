"""``create_app``: the one place that builds the gateway's state.

Importing this module does nothing. The lifespan loads the policy (a bad policy stops start-up
with a clear message), opens the pooled upstream client, then loads the classifier in a worker
thread while ``/healthz`` already answers; ``/readyz`` turns 200 when everything is loaded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import httpx
from fastapi import FastAPI, Request
from httpx_aiohttp import AiohttpTransport
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from classifiers.errors import ClassifierError
from gateway.api import router
from gateway.classify import RouteClassifier, build_classifier
from gateway.config import ClassifierSettings, Policy, load_policy
from gateway.decision_log import DecisionLog
from gateway.errors import BadRequest, GatewayError, MethodNotAllowed, NotFound
from gateway.metrics import GatewayMetrics
from gateway.record import Recorder
from gateway.settings import Settings
from gateway.shutdown import Drain
from gateway.state import GatewayState
from gateway.tokens import TokenCounter

log = logging.getLogger("gateway")

ClassifierFactory = Callable[[ClassifierSettings], RouteClassifier]


def _decision_log(target: str) -> DecisionLog | None:
    if target == "off":
        return None
    if target == "stdout":
        return DecisionLog.to_stdout()
    return DecisionLog.to_file(Path(target))


def _client(transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    """The one pooled upstream client. Per-backend timeouts are set per request.

    httpx is the interface; aiohttp does the HTTP/1.1 work underneath, since its C parser costs
    a third of the CPU per proxied request that httpcore's pure-Python stack does (loadtest/RESULTS.md).
    """
    if transport is None:
        transport = AiohttpTransport(client=_aiohttp_session)
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(30.0),
        follow_redirects=False,
        trust_env=False,
    )


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
        decision_log = _decision_log(settings.decision_log)
        state = GatewayState(
            settings=settings,
            registry=registry,
            metrics=metrics,
            recorder=Recorder(metrics, decision_log),
            counter=TokenCounter(),
            client=_client(transport),
            drain=drain if drain is not None else Drain(),
        )
        app.state.gateway = state
        loader = asyncio.create_task(_load(state, loaded, factory))
        try:
            yield
        finally:
            loader.cancel()
            await asyncio.gather(loader, return_exceptions=True)
            state.active = None
            await state.client.aclose()
            if state.classifier is not None:
                await state.classifier.aclose()
            if decision_log is not None:
                decision_log.close()

    app = FastAPI(
        title="LLM routing gateway",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.include_router(router)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods, in the OpenAI error shape."""
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
    error: GatewayError
    if status == 404:
        error = NotFound(f"no such endpoint: {request.method} {request.url.path}", code="unknown_url")
    elif status == 405:
        error = MethodNotAllowed(f"method {request.method} is not allowed on {request.url.path}")
    elif status < 500:
        error = BadRequest(str(getattr(exc, "detail", "bad request")))
    else:
        error = GatewayError("internal error in the gateway; see its logs")
    return Response(error.body_bytes(), status_code=error.status, media_type="application/json")


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # Logged here with its traceback; the client gets no internals.
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    error = GatewayError("internal error in the gateway; see its logs")
    return Response(error.body_bytes(), status_code=500, media_type="application/json")


async def _load(state: GatewayState, policy: Policy, factory: ClassifierFactory) -> None:
    settings = policy.classifier
    try:
        if settings is not None and settings.enabled and state.settings.classifier_enabled:
            classifier = await asyncio.to_thread(factory, settings)
            await classifier.start()
            state.classifier = classifier
            if state.metrics is not None:
                d = classifier.description
                state.metrics.classifier_info.labels(
                    d.get("encoder", "?"), d.get("head", "?"), d.get("artefact", "?")
                ).set(1)
        state.activate(policy)
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
