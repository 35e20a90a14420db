"""An in-process gateway that synchronous tests (hypothesis, schemathesis) can drive.

The app, its lifespan and an ``httpx.AsyncClient`` over ``ASGITransport`` live on an event loop
in a background thread (an anyio blocking portal); tests call into it. ``raw`` sends a hand-built
ASGI request (any header bytes, a body in chunks with or without Content-Length) for the cases an
HTTP client refuses to produce.

The mock upstream fails for two models on purpose, so generated requests also walk the gateway's
upstream-failure paths: ``m-rag`` answers 500, ``m-long`` times out. Any 502/503/504 the gateway
returns must come after the upstream was asked (``UPSTREAM_STATUSES``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping, MutableMapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.config import parse_policy
from gateway.settings import Settings
from tests.gateway.fakes import MockUpstream, keyword_factory

MAX_BODY_BYTES = 64_000
UPSTREAM_STATUSES = frozenset({502, 503, 504})
OVERRIDE_HEADER = "x-gateway-route"
MODELS = ("auto", "m-small", "m-rag", "m-long", "m-big")

POLICY_YAML = """
name: fuzz
version: "1"
virtual_models: [auto]
backends:
  - {name: small-a, path: small, base_url: "http://up.test/v1", model: m-small, max_context_tokens: 4000,
     price_per_mtok_in: 1, price_per_mtok_out: 2}
  - {name: rag-a, path: rag, base_url: "http://up.test/v1", model: m-rag, max_context_tokens: 4000,
     price_per_mtok_in: 2, price_per_mtok_out: 4}
  - {name: long-a, path: long_context, base_url: "http://up.test/v1", model: m-long, max_context_tokens: 100000,
     price_per_mtok_in: 5, price_per_mtok_out: 10}
  - {name: big-a, path: frontier, base_url: "http://up.test/v1", model: m-big, max_context_tokens: 8000,
     price_per_mtok_in: 10, price_per_mtok_out: 30}
routes:
  small: {backends: [small-a, big-a]}
  rag: {backends: [rag-a, big-a]}
  long_context: {backends: [long-a]}
  frontier: {backends: [big-a]}
default_route: frontier
baseline_backend: big-a
rules:
  override: {allowed_routes: [small, rag, long_context]}
  long_context: {threshold_tokens: 2000}
classifier:
  encoder: hash
  artefact: unused
  confidence_threshold: 0.5
  when_unsure: frontier
"""


def failing_upstream() -> MockUpstream:
    return MockUpstream(failures={"m-rag": 500, "m-long": lambda: httpx.ReadTimeout("upstream too slow")})


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True, slots=True)
class InProcessGateway:
    app: FastAPI
    portal: BlockingPortal
    client: httpx.AsyncClient
    upstream: MockUpstream

    def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | Mapping[bytes, bytes] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        async def send() -> httpx.Response:
            return await self.client.request(method, path, content=content, headers=headers, **kwargs)

        return self.portal.call(send)

    def post_json(self, path: str, body: object, headers: Mapping[str, str] | None = None) -> httpx.Response:
        return self.request(
            "POST",
            path,
            content=orjson.dumps(body),
            headers={"content-type": "application/json", **(headers or {})},
        )

    def raw(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[bytes, bytes]] = (),
        chunks: Sequence[bytes] = (),
    ) -> RawResponse:
        async def call() -> RawResponse:
            return await raw_asgi(self.app, method, path, headers, chunks)

        return self.portal.call(call)

    def upstream_calls(self) -> int:
        return len(self.upstream.calls)


async def raw_asgi(
    app: FastAPI, method: str, path: str, headers: Sequence[tuple[bytes, bytes]], chunks: Sequence[bytes]
) -> RawResponse:
    """One HTTP exchange as ASGI messages: the body arrives in ``chunks``; the client stays connected."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("latin-1"),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("gw.test", 80),
        "state": {},
    }
    pending = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ] or [{"type": "http.request", "body": b"", "more_body": False}]
    finished = asyncio.Event()
    status = 0
    out_headers: list[tuple[bytes, bytes]] = []
    body: list[bytes] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers.extend((bytes(k), bytes(v)) for k, v in message.get("headers", []))
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))
            if not message.get("more_body", False):
                finished.set()

    await app(scope, receive, send)
    finished.set()
    return RawResponse(status, tuple(out_headers), b"".join(body))


@asynccontextmanager
async def _serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        for _ in range(500):
            if app.state.gateway.active is not None:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError(f"gateway never became ready: {app.state.gateway.load_error}")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test", timeout=30) as client:
            yield client


@contextmanager
def running_gateway(upstream: MockUpstream | None = None) -> Iterator[InProcessGateway]:
    upstream = upstream if upstream is not None else failing_upstream()
    app = create_app(
        Settings(max_body_bytes=MAX_BODY_BYTES),
        policy=parse_policy(POLICY_YAML, Path("fuzz.yaml")),
        classifier_factory=keyword_factory,  # type: ignore[arg-type]  # the fake's attributes live on its class
        transport=upstream.transport(),
        registry=CollectorRegistry(),
    )
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(_serving(app)) as client:
        yield InProcessGateway(app, portal, client, upstream)


def assert_openai_error(body: bytes, status: int) -> dict[str, Any]:
    """The body is ``{"error": {"message", "type", "param", "code"}}`` with the right types."""
    doc = orjson.loads(body)
    assert isinstance(doc, dict) and set(doc) == {"error"}, (status, body[:300])
    error = doc["error"]
    assert isinstance(error, dict) and set(error) == {"message", "type", "param", "code"}, (status, error)
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    assert error["param"] is None or isinstance(error["param"], str), error
    assert error["code"] is None or isinstance(error["code"], str), error
    return error


def assert_safe_headers(headers: Sequence[tuple[bytes, bytes]]) -> None:
    """No response header carries control characters or an unbounded client-chosen value."""
    for name, value in headers:
        assert not any(c < 0x20 and c != 0x09 for c in value), (name, value[:100])
        assert 0x7F not in value, (name, value[:100])
        assert len(value) <= 4096, (name, len(value))
    rid = next((v for k, v in headers if k.lower() == b"x-request-id"), None)
    if rid is not None:
        assert 1 <= len(rid) <= 128 and all(chr(c).isalnum() or chr(c) in "._:-" for c in rid), rid
