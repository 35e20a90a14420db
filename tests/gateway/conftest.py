from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.config import Policy, parse_policy
from gateway.settings import Settings
from tests.gateway.fakes import MockUpstream, keyword_factory

POLICY_YAML = """
name: test
version: "7"
virtual_models: [auto]
backends:
  - {name: small-a, path: small, base_url: "http://up.test/v1", model: m-small, max_context_tokens: 1000,
     price_per_mtok_in: 1, price_per_mtok_out: 2}
  - {name: rag-a, path: rag, base_url: "http://up.test/v1", model: m-rag, max_context_tokens: 4000,
     price_per_mtok_in: 2, price_per_mtok_out: 4}
  - {name: long-a, path: long_context, base_url: "http://up.test/v1", model: m-long, max_context_tokens: 100000,
     price_per_mtok_in: 5, price_per_mtok_out: 10}
  - {name: big-a, path: frontier, base_url: "http://up.test/v1", model: m-big, max_context_tokens: 8000,
     price_per_mtok_in: 10, price_per_mtok_out: 30, api_key_env: TEST_BIG_KEY}
  - {name: big-b, path: frontier, base_url: "http://up2.test/v1", model: m-big2, max_context_tokens: 8000,
     price_per_mtok_in: 10, price_per_mtok_out: 30, pinnable: false}
routes:
  small: {backends: [small-a, big-a]}
  rag: {backends: [rag-a, big-a]}
  long_context: {backends: [long-a]}
  frontier: {backends: [big-a, big-b]}
default_route: frontier
baseline_backend: big-a
rules:
  override: {allowed_routes: [small, rag]}
  long_context: {threshold_tokens: 2000}
classifier:
  encoder: hash
  artefact: unused
  confidence_threshold: 0.5
  when_unsure: frontier
"""


def make_policy(text: str = POLICY_YAML) -> Policy:
    return parse_policy(text, Path("test.yaml"))


@pytest.fixture
def monkey_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_BIG_KEY", "sk-test-secret")


@pytest.fixture
def upstream() -> MockUpstream:
    return MockUpstream()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def client(
    monkey_env: None, upstream: MockUpstream, registry: CollectorRegistry
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        Settings(max_body_bytes=200_000),
        policy=make_policy(),
        classifier_factory=keyword_factory,
        transport=upstream.transport(),
        registry=registry,
    )
    async with app.router.lifespan_context(app):
        await _wait_ready(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as c:
            yield c


async def _wait_ready(app: object) -> None:
    import asyncio

    for _ in range(200):
        if app.state.gateway.active is not None:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gateway never became ready: {app.state.gateway.load_error}")  # type: ignore[attr-defined]
