from __future__ import annotations

import json
from typing import Any

import httpx


def chat(
    model: str = "sim-small", content: str = "What is the capital of France?", **extra: Any
) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}],
        **extra,
    }


def sse_events(text: str) -> list[str]:
    return [block[len("data: ") :] for block in text.split("\n\n") if block.startswith("data: ")]


async def configure(client: httpx.AsyncClient, **config: Any) -> dict[str, Any]:
    r = await client.post("/__sim/config", content=json.dumps(config))
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result
