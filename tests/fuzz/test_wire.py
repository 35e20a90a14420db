"""Bad input over a real socket: a gateway process (uvicorn) in front of the simulator.

Byte-level cases an in-process client cannot send as a server would see them: chunked bodies
over the limit, a Content-Length the server must refuse before reading, broken request lines and
header bytes. The server answers each with a 4xx (or closes the connection), never a 5xx, and
never reflects a header it was sent.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httptools
import orjson
import pytest

from tests.e2e.procs import free_port, gateway_cmd, running, simulator_cmd
from tests.fuzz.harness import assert_openai_error, assert_safe_headers

pytestmark = pytest.mark.e2e

LIMIT = 64_000
POLICY = """
name: wire
version: "1"
backends:
  - {{name: small-sim, path: small, base_url: "http://127.0.0.1:{sim}/v1", model: sim-small,
     max_context_tokens: 16000, price_per_mtok_in: 0.1, price_per_mtok_out: 0.4}}
routes:
  small: {{backends: [small-sim]}}
  frontier: {{backends: [small-sim]}}
  long_context: {{backends: [small-sim]}}
default_route: small
baseline_backend: small-sim
"""
BODY = orjson.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    sim = free_port()
    with running(
        simulator_cmd(sim, "--ttft-ms", "0", "--tokens-per-second", "0"), f"http://127.0.0.1:{sim}/health"
    ):
        policy: Path = tmp_path_factory.mktemp("wire") / "policy.yaml"
        policy.write_text(POLICY.format(sim=sim))
        port = free_port()
        env = {"GATEWAY_MAX_BODY_BYTES": str(LIMIT)}
        cmd = gateway_cmd(policy, port, "--no-classifier")
        with running(cmd, f"http://127.0.0.1:{port}/readyz", env=env):
            yield "127.0.0.1", port


class _Answer:
    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done = True


def exchange(address: tuple[str, int], *parts: bytes, read_first: bool = False) -> tuple[int, _Answer]:
    """Send the parts, read one answer; 0 if the server closed without answering.

    ``read_first``: send only the first part (the head), read the answer, then try the rest.
    """
    answer = _Answer()
    parser = httptools.HttpResponseParser(answer)
    with socket.create_connection(address, timeout=10) as s:
        s.sendall(parts[0])
        rest = parts[1:]
        if not read_first:
            for part in rest:
                try:
                    s.sendall(part)
                except OSError:  # the server may answer and close before reading it all
                    break
        while not answer.done:
            try:
                data = s.recv(65536)
            except OSError:
                break
            if not data:
                break
            try:
                parser.feed_data(data)
            except httptools.HttpParserError:
                break
    return (parser.get_status_code() if answer.done else 0), answer


def head(path: str = "/v1/chat/completions", *extra: bytes) -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s" % (
        path.encode(),
        b"".join(x + b"\r\n" for x in extra),
    )


def test_valid_request_over_the_wire(gateway: tuple[str, int]) -> None:
    status, answer = exchange(
        gateway, head("/v1/chat/completions", b"Content-Length: %d" % len(BODY)) + b"\r\n" + BODY
    )
    assert status == 200, answer.body[:300]
    assert_safe_headers(answer.headers)


def test_declared_length_over_the_limit_is_refused_before_the_body(gateway: tuple[str, int]) -> None:
    status, answer = exchange(
        gateway,
        head("/v1/chat/completions", b"Content-Length: %d" % (LIMIT * 10)) + b"\r\n",
        b"x" * 1000,
        read_first=True,
    )
    assert status == 413
    assert assert_openai_error(answer.body, status)["code"] == "request_too_large"


def test_chunked_body_over_the_limit_is_413(gateway: tuple[str, int]) -> None:
    chunk = b"%x\r\n%s\r\n" % (8192, b" " * 8192)
    chunks = [chunk] * (LIMIT // 8192 + 3) + [b"0\r\n\r\n"]
    status, answer = exchange(
        gateway, head("/v1/chat/completions", b"Transfer-Encoding: chunked") + b"\r\n", *chunks
    )
    assert status == 413
    assert assert_openai_error(answer.body, status)["code"] == "request_too_large"


def test_chunked_body_under_the_limit_is_served(gateway: tuple[str, int]) -> None:
    pieces = [BODY[i : i + 10] for i in range(0, len(BODY), 10)]
    chunks = [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces] + [b"0\r\n\r\n"]
    status, answer = exchange(
        gateway, head("/v1/chat/completions", b"Transfer-Encoding: chunked") + b"\r\n", *chunks
    )
    assert status == 200, answer.body[:300]


@pytest.mark.parametrize(
    "request_bytes",
    [
        head("/v1/chat/completions", b"X-Request-Id: abc\rX-Evil: 1", b"Content-Length: 2") + b"\r\n{}",
        head("/v1/chat/completions", b"X-Request-Id: abc\x00def", b"Content-Length: 2") + b"\r\n{}",
        head("/v1/chat/completions", b"X-Request-Id: abc\x7fdef", b"Content-Length: 2") + b"\r\n{}",
        head("/v1/chat/completions", b"Content-Length: 2", b"Content-Length: 3") + b"\r\n{}x",
        head("/v1/chat/completions", b"Content-Length: -1") + b"\r\n{}",
        head("/v1/chat/completions", b"Transfer-Encoding: chunked", b"Content-Length: 2")
        + b"\r\n2\r\n{}\r\n0\r\n\r\n",
        head("/v1/chat/completions", b" folded: header", b"Content-Length: 2") + b"\r\n{}",
        b"POST /v1/chat/completions\xff HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        b"POST /v1/chat/completions HTTP/9.9\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS client hello
        head("/v1/chat/completions", b"X-Request-Id: " + b"a" * 200_000, b"Content-Length: 2") + b"\r\n{}",
    ],
    ids=[
        "bare-cr",
        "nul",
        "del",
        "two-lengths",
        "negative-length",
        "te-and-cl",
        "obs-fold",
        "bad-path",
        "http-9",
        "tls",
        "huge-header",
    ],
)
def test_broken_http_is_refused_without_a_5xx(gateway: tuple[str, int], request_bytes: bytes) -> None:
    status, answer = exchange(gateway, request_bytes)
    assert status == 0 or 400 <= status < 500, (status, answer.body[:200])
    assert_safe_headers(answer.headers)
    assert not any(name in (b"x-evil", b"folded") for name, _ in answer.headers)


@pytest.mark.parametrize(
    "value",
    [b"abc def", b"\xff\xfe", b"a" * 5000, b"id\tid"],
    ids=["space", "latin1", "long", "tab"],
)
def test_odd_request_ids_are_replaced_on_the_wire(gateway: tuple[str, int], value: bytes) -> None:
    status, answer = exchange(
        gateway,
        head("/v1/chat/completions", b"X-Request-Id: " + value, b"Content-Length: %d" % len(BODY))
        + b"\r\n"
        + BODY,
    )
    assert status == 200, answer.body[:200]
    assert_safe_headers(answer.headers)
    rid = dict(answer.headers)[b"x-request-id"]
    assert rid != value and len(rid) == 32
