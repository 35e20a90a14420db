"""In-process gateway apps for the observability tests: real app, mock upstream, fake classifier."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.config import Policy
from gateway.settings import Settings
from tests.gateway.fakes import keyword_factory


async def wait_ready(app: FastAPI) -> None:
    for _ in range(500):
        if app.state.gateway.active is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gateway never became ready: {app.state.gateway.load_error}")


@asynccontextmanager
async def gateway_client(
    policy: Policy,
    handler: Callable[[httpx.Request], httpx.Response],
    registry: CollectorRegistry,
    settings: Settings | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        settings or Settings(max_body_bytes=200_000),
        policy=policy,
        classifier_factory=keyword_factory,
        transport=httpx.MockTransport(handler),
        registry=registry,
    )
    async with app.router.lifespan_context(app):
        await wait_ready(app)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test") as c:
            yield c
