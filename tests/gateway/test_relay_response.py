"""A stream whose body never starts still closes its upstream and records itself."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.requests import ClientDisconnect

from gateway.proxy import _RelayResponse


async def test_on_end_runs_when_the_client_is_gone_before_the_body() -> None:
    started = False
    ended: list[str] = []

    async def relay() -> AsyncIterator[bytes]:
        nonlocal started
        started = True
        yield b"data: x\n\n"

    async def on_end() -> None:
        ended.append("closed")

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        raise OSError("client went away")

    response = _RelayResponse(relay(), on_end=on_end, media_type="text/event-stream")
    scope = {"type": "http", "asgi": {"spec_version": "2.4"}}
    with pytest.raises(ClientDisconnect):
        await response(scope, receive, send)
    assert ended == ["closed"]
    assert not started
