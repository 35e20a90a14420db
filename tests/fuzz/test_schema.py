"""schemathesis against the gateway's own OpenAPI schema (``app.openapi()``), in-process.

schemathesis generates the requests (valid and invalid ones) from the schema and runs its
checks on each answer; the requests go through the same in-process gateway as the other fuzz
tests. A 502/503/504 is not a server error when the mock upstream caused it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode, checks

from tests.fuzz.harness import UPSTREAM_STATUSES, InProcessGateway, assert_openai_error, assert_safe_headers

Check = Callable[..., Any]
OPERATIONS = [
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"),
    ("POST", "/v1/route"),
    ("GET", "/v1/models"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def send(gw: InProcessGateway, case: Case[Any]) -> httpx.Response:
    kwargs = case.as_transport_kwargs(base_url="http://gw.test")
    content: bytes | None
    if "json" in kwargs:
        content = json.dumps(kwargs["json"]).encode()
    else:
        data = kwargs.get("data")
        content = data.encode() if isinstance(data, str) else data
    headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "content-length"}
    return gw.request(
        kwargs["method"], kwargs["url"], content=content, headers=headers, params=kwargs.get("params")
    )


# Operations without parameters or a body have no invalid input to generate.
CASES = [
    (m, p, mode) for m, p in OPERATIONS for mode in MODES if m == "POST" or mode is GenerationMode.POSITIVE
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=lambda x: getattr(x, "value", x))
def test_schema_operations(gw: InProcessGateway, method: str, path: str, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_dict(gw.app.openapi())
    operation = schema[path][method]

    @settings(
        max_examples=50,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Case[Any]) -> None:
        before = gw.upstream_calls()
        response = send(gw, case)
        applied: list[Check] = [checks.content_type_conformance, checks.response_schema_conformance]
        upstream_caused = response.status_code in UPSTREAM_STATUSES and (
            gw.upstream_calls() > before or b"no_healthy_backend" in response.content
        )
        if not upstream_caused:
            applied.append(checks.not_a_server_error)
        case.validate_response(response, checks=applied)
        assert_safe_headers(response.headers.raw)
        if response.status_code >= 400 and method == "POST":
            assert_openai_error(response.content, response.status_code)

    run()
