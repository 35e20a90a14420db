"""Admin endpoints: reload the policy and keys, roll back, show what is active.

They need an admin key (``GATEWAY_ADMIN_KEY_SHA256``, or a key with ``role: admin`` in the keys
file); a client key gets 403, and with no admin key configured they are disabled (403). A reload
validates everything first, then swaps: a bad file changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from classifiers.errors import ClassifierError
from gateway.auth import KeysFileError, check_routes, load_ring
from gateway.classify import build_classifier
from gateway.config import Policy, PolicyError, load_policy
from gateway.errors import BadRequest, Forbidden, GatewayError, NotReady
from gateway.limits import AccessControl
from gateway.models import load_models
from gateway.state import GatewayState

admin_router = APIRouter(prefix="/admin", tags=["admin"])
log = logging.getLogger("gateway.admin")


def _json(data: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _error(exc: GatewayError) -> Response:
    return Response(
        exc.body_bytes(), status_code=exc.status, headers=exc.headers, media_type="application/json"
    )


def _admin(request: Request) -> tuple[GatewayState, AccessControl, str]:
    state: GatewayState = request.app.state.gateway
    access = state.access
    if access is None:
        raise Forbidden(
            "the admin endpoints are disabled: no admin key is configured "
            "(GATEWAY_ADMIN_KEY_SHA256, or a key with role admin in the keys file)",
            code="admin_disabled",
        )
    key = access.authenticate(request.headers, role="admin")
    assert key is not None  # role admin never answers "authentication off"
    return state, access, key.id


def _describe(state: GatewayState) -> dict[str, Any]:
    active = state.active
    previous = state.previous
    return {
        "policy": active.runtime.policy.name if active else None,
        "version": active.runtime.version if active else None,
        "previous": {"policy": previous.name, "version": previous.version} if previous else None,
        "keys": len(state.access.ring.keys) if state.access is not None else 0,
    }


async def _activate(state: GatewayState, access: AccessControl, policy: Policy) -> None:
    if state.active is None:
        raise NotReady("the gateway is still loading its first policy")
    try:
        check_routes(access.ring, policy.routes, state.settings.keys_file)
        # A new classifier or cost/quality artefact is loaded before anything is swapped.
        await load_models(state, policy, state.classifier_factory or build_classifier)
        state.activate(policy)
    except (PolicyError, KeysFileError, ClassifierError) as exc:
        raise BadRequest(str(exc), code="invalid_policy") from None


@admin_router.get("/policy")
async def show_policy(request: Request) -> Response:
    try:
        state, _, _ = _admin(request)
    except GatewayError as exc:
        return _error(exc)
    return _json(_describe(state))


@admin_router.post("/reload")
async def reload(request: Request) -> Response:
    """Re-read the policy file and the keys file; validate both, then swap both."""
    try:
        state, access, who = _admin(request)
        settings = state.settings
        async with access.reload_lock:
            try:
                policy = await asyncio.to_thread(load_policy, settings.policy_path)
                ring = await asyncio.to_thread(
                    load_ring, settings.keys_file, settings.api_keys, settings.admin_key_sha256
                )
                check_routes(ring, policy.routes, settings.keys_file)
            except (PolicyError, KeysFileError) as exc:
                raise BadRequest(str(exc), code="invalid_policy") from None
            if not any(k.role == "admin" for k in ring.keys):
                raise BadRequest(
                    "the new keys would leave no admin key, locking the admin endpoints; not reloaded",
                    code="invalid_policy",
                )
            previous_ring = access.ring
            access.ring = ring  # checked against the new policy above
            try:
                await _activate(state, access, policy)
            except GatewayError:
                access.ring = previous_ring
                raise
    except GatewayError as exc:
        return _error(exc)
    log.info("policy %s reloaded by admin key %r; %d keys", policy.name, who, len(ring.keys))
    return _json({"reloaded": True, **_describe(state)})


@admin_router.post("/rollback")
async def rollback(request: Request) -> Response:
    """Back to the policy active before the last reload (the keys stay as they are)."""
    try:
        state, access, who = _admin(request)
        async with access.reload_lock:
            previous = state.previous
            if previous is None:
                raise BadRequest("there is no previous policy to roll back to", code="no_previous_policy")
            await _activate(state, access, previous)
    except GatewayError as exc:
        return _error(exc)
    log.info("policy rolled back to %s by admin key %r", previous.name, who)
    return _json({"rolled_back": True, **_describe(state)})
