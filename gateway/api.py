"""Thin HTTP handlers. Parsing, routing and forwarding live elsewhere; these only wire them."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import PlainTextResponse, Response

from gateway.errors import GatewayError, NotReady
from gateway.health import CircuitBreakers
from gateway.multiproc import exposition
from gateway.parse import decode_json, parse_request, request_id
from gateway.proxy import Proxy, read_body
from gateway.state import GatewayState
from gateway.types import Endpoint

router = APIRouter()

_CHAT_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["messages"],
                    "properties": {
                        "model": {"type": "string", "description": "'auto', or a model from /v1/models"},
                        "messages": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "required": ["role"],
                                "properties": {
                                    "role": {"type": "string"},
                                    "content": {"oneOf": [{"type": "string"}, {"type": "array"}]},
                                },
                            },
                        },
                        "stream": {"type": "boolean"},
                        "stream_options": {"type": "object"},
                        "max_tokens": {"type": "integer", "minimum": 1},
                    },
                    "additionalProperties": True,
                }
            }
        },
    }
}
_COMPLETIONS_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["prompt"],
                    "properties": {
                        "model": {"type": "string"},
                        "prompt": {
                            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
                        },
                        "stream": {"type": "boolean"},
                        "max_tokens": {"type": "integer", "minimum": 1},
                    },
                    "additionalProperties": True,
                }
            }
        },
    }
}

# Documented answers: errors are always the OpenAI shape; the completion endpoints stream SSE when
# asked to. Upstream 4xx bodies pass through as the backend wrote them, so only message and type
# are required.
_ERROR_RESPONSE: dict[str, Any] = {
    "description": "an error in the OpenAI shape",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["message", "type"],
                        "properties": {
                            "message": {"type": "string"},
                            "type": {"type": "string"},
                            "param": {"type": ["string", "null"]},
                            "code": {"type": ["string", "null"]},
                        },
                    }
                },
            }
        }
    },
}
_STREAMABLE: dict[str, Any] = {
    "responses": {
        "200": {
            "description": "a completion; with `stream: true`, a server-sent event stream ending in `data: [DONE]`",
            # Before OpenAPI 3.2, `schema` describes each event of a stream.
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "object",
                        "required": ["data"],
                        "properties": {"data": {"type": "string"}},
                    }
                }
            },
        },
        "default": _ERROR_RESPONSE,
    }
}


def _state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


def _proxy(request: Request) -> Proxy:
    return Proxy(_state(request))


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


@router.post("/v1/chat/completions", openapi_extra={**_CHAT_SCHEMA, **_STREAMABLE})
async def chat_completions(request: Request) -> Response:
    return await _proxy(request).handle(request, "chat")


@router.post("/v1/completions", openapi_extra={**_COMPLETIONS_SCHEMA, **_STREAMABLE})
async def completions(request: Request) -> Response:
    return await _proxy(request).handle(request, "completions")


@router.get("/v1/models")
async def models(request: Request) -> Response:
    active = _state(request).active
    access = _state(request).access
    if access is not None:
        try:
            access.authenticate(request.headers)
        except GatewayError as exc:
            return Response(
                exc.body_bytes(), status_code=exc.status, headers=exc.headers, media_type="application/json"
            )
    if active is None:
        error = NotReady("the gateway is still loading")
        return Response(error.body_bytes(), status_code=error.status, media_type="application/json")
    runtime = active.runtime
    data: list[dict[str, Any]] = [
        {"id": name, "object": "model", "created": 0, "owned_by": "gateway", "kind": "virtual"}
        for name in runtime.policy.virtual_models
    ]
    seen: set[str] = set()
    for name, backend in runtime.pinnable.items():
        target = runtime.backends[backend]
        if name != target.model or name in seen:
            continue
        seen.add(name)
        data.append(
            {
                "id": name,
                "object": "model",
                "created": 0,
                "owned_by": "gateway",
                "kind": "backend",
                "backend": target.name,
                "route": target.route,
                "context_window": target.max_context_tokens,
            }
        )
    return _json({"object": "list", "data": data})


@router.post("/v1/route", openapi_extra={**_CHAT_SCHEMA, "responses": {"default": _ERROR_RESPONSE}})
async def route(request: Request) -> Response:
    """Dry run: the decision for this request and why. Nothing is forwarded."""
    state = _state(request)
    rid = request_id(request.headers.get("x-request-id"))
    active = state.active
    try:
        if state.access is not None:
            state.access.authenticate(request.headers)
        if active is None:
            raise NotReady("the gateway is still loading")
        raw = await read_body(request, state.settings.max_body_bytes)
        body = decode_json(raw)
        endpoint: Endpoint = "completions" if "prompt" in body and "messages" not in body else "chat"
        chat = parse_request(
            raw,
            endpoint,
            rid=rid,
            default_model=state.default_model,
            route_override=request.headers.get(active.runtime.override_header),
        )
        decision = await active.pipeline.decide(chat)
    except GatewayError as exc:
        return Response(
            exc.body_bytes(),
            status_code=exc.status,
            media_type="application/json",
            headers={"x-request-id": rid},
        )
    return _json(
        {"request_id": rid, "policy_version": active.runtime.version, **decision.as_dict()},
        headers={"x-request-id": rid},
    )


@router.get("/healthz")
async def healthz() -> Response:
    return _json({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    state = _state(request)
    active = state.active
    details: dict[str, Any] = {
        "policy": active.runtime.policy.name if active else None,
        "policy_version": active.runtime.version if active else None,
        "classifier": state.classifier.description if state.classifier else None,
    }
    if state.load_error:
        details["error"] = state.load_error
    if isinstance(state.health, CircuitBreakers):
        details["backends"] = state.health.snapshot()
    if state.drain.draining:  # shutting down: out of the load balancer, still serving
        details["draining"] = True
    ready = active is not None and not state.drain.draining
    return _json({"ready": ready, **details}, status=200 if ready else 503)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    return Response(exposition(_state(request).registry), media_type=CONTENT_TYPE_LATEST)
