"""Fixtures for access control: apps with keys, a fake clock, and a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.auth import hash_key
from gateway.settings import Settings
from gateway.state import GatewayState
from tests.e2e.procs import free_port, stop
from tests.gateway.conftest import make_policy
from tests.gateway.fakes import MockUpstream, keyword_factory

USER_KEY = "gk-user-0123456789abcdefghijklmnopqrstuv"
OTHER_KEY = "gk-other-0123456789abcdefghijklmnopqrst"
ADMIN_KEY = "gk-admin-0123456789abcdefghijklmnopqrst"
LIMITED_KEY = "gk-limited-0123456789abcdefghijklmnopq"


def keys_yaml(limited: str = "{requests_per_min: 3}") -> str:
    return f"""
keys:
  - id: team-a
    sha256: {hash_key(USER_KEY)}
  - id: team-small
    sha256: {hash_key(OTHER_KEY)}
    allowed_routes: [small, rag]
  - id: team-limited
    sha256: {hash_key(LIMITED_KEY)}
    limits: {limited}
  - id: ops
    sha256: {hash_key(ADMIN_KEY)}
    role: admin
"""


class FakeClock:
    def __init__(self, now: float = 1_699_999_980.0) -> None:  # the start of a minute
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def chat(text: str, **extra: object) -> dict[str, object]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], **extra}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@dataclass
class Gateway:
    client: httpx.AsyncClient
    app: FastAPI
    upstream: MockUpstream
    registry: CollectorRegistry

    @property
    def state(self) -> GatewayState:
        state: GatewayState = self.app.state.gateway
        return state

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.registry.get_sample_value(name, labels or {})
        return 0.0 if value is None else value


GatewayFactory = Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.yaml"
    path.write_text(keys_yaml())
    return path


@pytest.fixture
def gateway_factory(monkeypatch: pytest.MonkeyPatch) -> GatewayFactory:
    monkeypatch.setenv("TEST_BIG_KEY", "sk-test-secret")

    @contextlib.asynccontextmanager
    async def make(policy_text: str | None = None, **settings: Any) -> AsyncIterator[Gateway]:
        upstream = MockUpstream()
        registry = CollectorRegistry()
        app = create_app(
            Settings(max_body_bytes=200_000, **settings),
            policy=make_policy(policy_text) if policy_text else make_policy(),
            classifier_factory=keyword_factory,  # type: ignore[arg-type]  # a structural fake
            transport=upstream.transport(),
            registry=registry,
        )
        async with app.router.lifespan_context(app):
            for _ in range(200):
                if app.state.gateway.active is not None:
                    break
                await asyncio.sleep(0.01)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
                yield Gateway(client, app, upstream, registry)

    return make


# ---------------------------------------------------------------- redis-server


@dataclass(frozen=True)
class RedisServer:
    url: str
    port: int

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install -y redis-server)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--protected-mode", "yes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    server = RedisServer(f"redis://127.0.0.1:{port}/0", port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if server.client().ping():
                    break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                    raise RuntimeError(f"redis-server did not start:\n{out[-2000:]}") from None
                time.sleep(0.05)
        yield server
    finally:
        stop(proc)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.client().flushall()
    return redis_server.url
