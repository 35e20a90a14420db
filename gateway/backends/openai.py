"""An OpenAI-compatible backend (OpenAI, vLLM, llama.cpp server, TGI, the simulator ...).

One small class, one async method; the pooled HTTP transport is injected and never built here.
It knows nothing about how the backend was chosen. Requests go straight to the transport: the
gateway wants none of a client's redirects, cookies or auth flows on the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from gateway.runtime import BackendTarget
from gateway.translate import upstream_body
from gateway.types import Endpoint


class OpenAIBackend:
    def __init__(self, target: BackendTarget) -> None:
        self.target = target
        self._timeout = {
            "connect": target.connect_s,
            "read": target.first_byte_s,
            "write": target.connect_s,
            "pool": target.connect_s,
        }
        self._headers = {"content-type": "application/json", **target.auth_headers}
        self._urls = {"chat": httpx.URL(target.chat_url), "completions": httpx.URL(target.completions_url)}

    async def send(
        self,
        transport: httpx.AsyncBaseTransport,
        endpoint: Endpoint,
        body: Mapping[str, Any],
        *,
        stream: bool,
        request_id: str,
    ) -> httpx.Response:
        """Send the request and return once the response headers arrive; the caller owns the body."""
        request = httpx.Request(
            "POST",
            self._urls[endpoint],
            content=upstream_body(body, self.target.model, stream=stream),
            headers={**self._headers, "x-request-id": request_id},
            extensions={"timeout": self._timeout},
        )
        response = await transport.handle_async_request(request)
        response.request = request
        return response
