"""A client that goes away cancels the upstream request within a second (seen by the simulator)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from tests.faults.conftest import Stack

pytestmark = pytest.mark.e2e


def open_request(stack: Stack, route: str, stream: bool) -> socket.socket:
    url = urlsplit(stack.gateway)
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}], "stream": stream})
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    sock.sendall(
        (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            f"x-gateway-route: {route}\r\nContent-Length: {len(body)}\r\n\r\n{body}"
        ).encode()
    )
    return sock


def in_flight(stack: Stack, model: str) -> int:
    by_model = stack.sim_stats()["in_flight_by_model"]
    assert isinstance(by_model, dict)
    return int(by_model.get(model, 0))


def wait_for(predicate: Callable[[], bool], timeout_s: float) -> float:
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout_s:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
    return time.perf_counter() - started


@pytest.mark.parametrize(
    ("route", "stream", "model"),
    [
        ("slow-answer", False, "slow-answer"),
        ("slow-answer", True, "slow-answer"),
        ("trickle", True, "trickle"),
    ],
    ids=["json-before-first-byte", "stream-before-first-byte", "stream-mid-stream"],
)
def test_client_disconnect_cancels_upstream(stack: Stack, route: str, stream: bool, model: str) -> None:
    disconnects = stack.sim_stats()["client_disconnects"]
    assert isinstance(disconnects, int)
    sock = open_request(stack, route, stream)
    wait_for(lambda: in_flight(stack, model) == 1, 5)
    if route == "trickle":
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")  # streaming has begun
    sock.close()
    took = wait_for(lambda: stack.sim_stats()["client_disconnects"] == disconnects + 1, 1.0)
    assert took < 1.0
    assert stack.sim_stats()["in_flight"] == 0
    assert stack.metric("gateway_in_flight_requests") == 0
