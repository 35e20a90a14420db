"""Authentication in-process: the 401/403 shapes, admin endpoints, and secrets that never leak."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.auth import hash_key
from tests.gateway.conftest import POLICY_YAML
from tests.security.conftest import (
    ADMIN_KEY,
    LIMITED_KEY,
    OTHER_KEY,
    USER_KEY,
    GatewayFactory,
    bearer,
    chat,
    keys_yaml,
)

WRONG_KEY = "gk-wrong-0123456789abcdefghijklmnopqrs"


def assert_openai_error(r: httpx.Response, status: int, error_type: str, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == error_type
    if code is not None:
        assert error["code"] == code


async def test_no_keys_means_auth_off_with_a_loud_warning(
    gateway_factory: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway"):
        async with gateway_factory() as gw:
            assert gw.state.access is None
            r = await gw.client.post("/v1/chat/completions", json=chat("hi"))
            assert r.status_code == 200
            admin = await gw.client.get("/admin/policy", headers=bearer(ADMIN_KEY))
            assert_openai_error(admin, 403, "permission_error", "admin_disabled")
    assert "authentication is OFF" in caplog.text


async def test_requests_need_a_valid_key(gateway_factory: GatewayFactory, keys_file: Path) -> None:
    async with gateway_factory(keys_file=keys_file) as gw:
        missing = await gw.client.post("/v1/chat/completions", json=chat("hi"))
        assert_openai_error(missing, 401, "authentication_error", "missing_api_key")
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = await gw.client.post("/v1/chat/completions", json=chat("hi"), headers=bearer(WRONG_KEY))
        assert_openai_error(wrong, 401, "authentication_error", "invalid_api_key")
        basic = await gw.client.post(
            "/v1/chat/completions", json=chat("hi"), headers={"authorization": "Basic dXNlcjpwYXNz"}
        )
        assert_openai_error(basic, 401, "authentication_error")
        for headers in (
            bearer(USER_KEY),
            {"Authorization": f"bearer {USER_KEY}"},
            {"api-key": USER_KEY},
            {"x-api-key": USER_KEY},
        ):
            ok = await gw.client.post("/v1/chat/completions", json=chat("hi"), headers=headers)
            assert ok.status_code == 200, (headers, ok.text)
        assert gw.metric("gateway_auth_failures_total") == 3
        # nothing reached the upstream for the refused requests, and no client key ever does
        assert len(gw.upstream.calls) == 4
        assert all(USER_KEY not in str(call["_auth"]) for call in gw.upstream.calls)
        models = await gw.client.get("/v1/models")
        assert_openai_error(models, 401, "authentication_error")
        assert (await gw.client.get("/v1/models", headers=bearer(USER_KEY))).status_code == 200
        dry = await gw.client.post("/v1/route", json=chat("hi"))
        assert_openai_error(dry, 401, "authentication_error")


async def test_health_and_metrics_stay_open(gateway_factory: GatewayFactory, keys_file: Path) -> None:
    async with gateway_factory(keys_file=keys_file) as gw:
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await gw.client.get(path)).status_code == 200, path


async def test_admin_endpoints_need_the_admin_key(gateway_factory: GatewayFactory, keys_file: Path) -> None:
    async with gateway_factory(keys_file=keys_file) as gw:
        none = await gw.client.get("/admin/policy")
        assert_openai_error(none, 401, "authentication_error")
        user = await gw.client.get("/admin/policy", headers=bearer(USER_KEY))
        assert_openai_error(user, 403, "permission_error", "admin_key_required")
        assert (await gw.client.post("/admin/reload", headers=bearer(USER_KEY))).status_code == 403
        assert (await gw.client.post("/admin/rollback", headers=bearer(USER_KEY))).status_code == 403
        admin = await gw.client.get("/admin/policy", headers=bearer(ADMIN_KEY))
        assert admin.status_code == 200
        assert admin.json()["policy"] == "test" and admin.json()["version"].startswith("7+")
        # and the admin key opens nothing else
        as_client = await gw.client.post("/v1/chat/completions", json=chat("hi"), headers=bearer(ADMIN_KEY))
        assert_openai_error(as_client, 403, "permission_error", "user_key_required")


async def test_reload_validates_then_swaps_and_rollback_goes_back(
    gateway_factory: GatewayFactory, keys_file: Path, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY_YAML.replace('version: "7"', 'version: "8"'))
    admin = bearer(ADMIN_KEY)
    async with gateway_factory(keys_file=keys_file, policy_path=policy) as gw:
        r = await gw.client.post("/admin/reload", headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["version"].startswith("8+") and r.json()["previous"]["version"] == "7"
        chat_r = await gw.client.post("/v1/chat/completions", json=chat("hi"), headers=bearer(USER_KEY))
        assert chat_r.headers["x-gateway-policy-version"].startswith("8+")

        policy.write_text(POLICY_YAML.replace("default_route: frontier", "default_route: nowhere"))
        bad = await gw.client.post("/admin/reload", headers=admin)
        assert_openai_error(bad, 400, "invalid_request_error", "invalid_policy")
        assert "default_route: unknown route 'nowhere'" in bad.json()["error"]["message"]
        assert (await gw.client.get("/admin/policy", headers=admin)).json()["version"].startswith("8+")

        back = await gw.client.post("/admin/rollback", headers=admin)
        assert back.status_code == 200 and back.json()["version"].startswith("7+")

        # the keys file is reloaded too: a new key works, a removed one stops working
        new_key = "gk-new-0123456789abcdefghijklmnopqrstu"
        policy.write_text(POLICY_YAML)
        keys_file.write_text(
            keys_yaml().replace(f"sha256: {hash_key(OTHER_KEY)}", f"sha256: {hash_key(new_key)}")
        )
        assert (await gw.client.post("/admin/reload", headers=admin)).status_code == 200
        ok = await gw.client.post("/v1/chat/completions", json=chat("hi"), headers=bearer(new_key))
        assert ok.status_code == 200
        gone = await gw.client.post("/v1/chat/completions", json=chat("hi"), headers=bearer(OTHER_KEY))
        assert gone.status_code == 401

        # keys naming a route the policy lacks are refused, and nothing changes
        keys_file.write_text(keys_yaml().replace("allowed_routes: [small, rag]", "allowed_routes: [tiny]"))
        refused = await gw.client.post("/admin/reload", headers=admin)
        assert_openai_error(refused, 400, "invalid_request_error", "invalid_policy")
        assert "not in the policy: tiny" in refused.json()["error"]["message"]
        assert (
            await gw.client.post("/v1/chat/completions", json=chat("hi"), headers=bearer(new_key))
        ).status_code == 200


async def test_rollback_without_a_previous_policy(gateway_factory: GatewayFactory, keys_file: Path) -> None:
    async with gateway_factory(keys_file=keys_file) as gw:
        r = await gw.client.post("/admin/rollback", headers=bearer(ADMIN_KEY))
        assert_openai_error(r, 400, "invalid_request_error", "no_previous_policy")


async def test_admin_key_from_the_environment_setting(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(admin_key_sha256=hash_key(ADMIN_KEY)) as gw:
        # no client keys: the model endpoints are open, the admin ones need the admin key
        assert (await gw.client.post("/v1/chat/completions", json=chat("hi"))).status_code == 200
        assert (await gw.client.get("/admin/policy")).status_code == 401
        assert (await gw.client.get("/admin/policy", headers=bearer(ADMIN_KEY))).status_code == 200


async def test_keys_never_appear_in_logs_metrics_decision_log_or_bodies(
    gateway_factory: GatewayFactory, keys_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    decisions = tmp_path / "decisions.jsonl"
    secrets = (USER_KEY, OTHER_KEY, ADMIN_KEY, LIMITED_KEY, WRONG_KEY)
    seen: list[str] = []
    caplog.set_level(logging.DEBUG)
    async with gateway_factory(keys_file=keys_file, decision_log=str(decisions)) as gw:
        calls = [
            ("POST", "/v1/chat/completions", bearer(USER_KEY), chat("prove it")),
            ("POST", "/v1/chat/completions", bearer(WRONG_KEY), chat("hi")),
            ("POST", "/v1/chat/completions", {"x-api-key": WRONG_KEY}, chat("hi")),
            ("POST", "/v1/chat/completions", bearer(OTHER_KEY), chat("prove it")),
            ("POST", "/v1/chat/completions", bearer(OTHER_KEY), {"model": "m-big", "messages": []}),
            ("POST", "/v1/chat/completions", bearer(ADMIN_KEY), chat("hi")),
            ("POST", "/v1/chat/completions", bearer(USER_KEY), chat("hi", stream=True)),
            ("POST", "/v1/chat/completions", bearer(USER_KEY), {"model": "auto"}),
            ("GET", "/admin/policy", bearer(USER_KEY), None),
            ("GET", "/admin/policy", bearer(WRONG_KEY), None),
            ("POST", "/v1/route", bearer(WRONG_KEY), chat("hi")),
        ]
        calls += [("POST", "/v1/chat/completions", bearer(LIMITED_KEY), chat("hi"))] * 5
        for method, path, headers, body in calls:
            r = await gw.client.request(method, path, headers=headers, json=body)
            seen.append(r.text)
            seen.append(str(r.headers))
        seen.append((await gw.client.get("/metrics")).text)
        assert gw.metric("gateway_rate_limited_total", {"limit": "requests"}) == 2
    seen.append(caplog.text)
    log_text = decisions.read_text()
    seen.append(log_text)
    everything = "\n".join(seen)
    for secret in secrets:
        assert secret not in everything
        assert hash_key(secret) not in everything
    assert "Bearer gk-" not in everything
    records = [orjson.loads(line) for line in log_text.splitlines()]
    assert {r["api_key_id"] for r in records} >= {"team-a", "team-small", "team-limited"}
    assert any(r["status"] == 401 and r["api_key_id"] is None for r in records)
