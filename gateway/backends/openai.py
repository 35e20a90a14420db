"""An OpenAI-compatible backend (OpenAI, vLLM, llama.cpp server, TGI, the simulator ...).

One small class, one async method; the pooled HTTP client is injected and never built here. It
knows nothing about how the backend was chosen.
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
        self.timeout = httpx.Timeout(
            connect=target.connect_s,
            read=target.first_byte_s,
            write=target.connect_s,
            pool=target.connect_s,
        )
        self._headers = {"content-type": "application/json", **target.auth_headers}

    def url(self, endpoint: Endpoint) -> str:
        return self.target.chat_url if endpoint == "chat" else self.target.completions_url

    async def send(
        self,
        client: httpx.AsyncClient,
        endpoint: Endpoint,
        body: Mapping[str, Any],
        *,
        stream: bool,
        request_id: str,
    ) -> httpx.Response:
        """Send the request and return once the response headers arrive; the caller owns the body."""
        request = client.build_request(
            "POST",
            self.url(endpoint),
            content=upstream_body(body, self.target.model, stream=stream),
            headers={**self._headers, "x-request-id": request_id},
            timeout=self.timeout,
        )
        return await client.send(request, stream=True)
