"""Fakes for in-process tests: a deterministic classifier and an OpenAI-compatible mock upstream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx

from gateway.classify import Verdict
from gateway.config import ClassifierSettings

KEYWORDS = {
    "extract": "small",
    "classify": "small",
    "policy": "rag",
    "wiki": "rag",
    "summarise": "long_context",
    "prove": "frontier",
}


class KeywordClassifier:
    """Deterministic: the first keyword found decides; no keyword -> 'frontier' at low confidence."""

    labels = ("small", "rag", "long_context", "frontier")
    description = {"encoder": "fake", "head": "keyword", "artefact": "none"}

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.closed = False

    async def start(self) -> None:
        return None

    async def classify(self, text: str) -> Verdict:
        self.seen.append(text)
        for word, label in KEYWORDS.items():
            if word in text.lower():
                return Verdict(label, 0.9, ((label, 0.9),), 0.0001, 0.00001, "fake")
        return Verdict("small", 0.3, (("small", 0.3), ("frontier", 0.25)), 0.0001, 0.00001, "fake")

    async def aclose(self) -> None:
        self.closed = True


def keyword_factory(_: ClassifierSettings) -> KeywordClassifier:
    return KeywordClassifier()


def completion(model: str, text: str = "hello", usage: bool = True) -> dict[str, object]:
    body: dict[str, object] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    return body


def sse_events(model: str, *, usage: bool, words: tuple[str, ...] = ("Hel", "lo")) -> list[bytes]:
    def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
        data = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": w}) for w in words]
    events.append(chunk({}, "stop"))
    if usage:
        data = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
            "choices": [],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
        }
        events.append(b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


async def _aiter(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@dataclass
class MockUpstream:
    """An OpenAI-compatible upstream keyed by model name; ``failures`` maps model -> status or exception."""

    failures: dict[str, int | Callable[[], Exception]] = field(default_factory=dict)
    calls: list[dict[str, object]] = field(default_factory=list)
    usage: bool = True

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        body["_url"] = str(request.url)
        body["_auth"] = request.headers.get("authorization")
        self.calls.append(body)
        model = body["model"]
        failure = self.failures.get(model)
        if callable(failure):
            raise failure()
        if failure is not None:
            return httpx.Response(failure, json={"error": {"message": "upstream says no", "type": "x"}})
        if body.get("stream"):
            wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return httpx.Response(
                200,
                headers={"content-type": "text/event-stream"},
                content=_aiter(sse_events(model, usage=wants_usage and self.usage)),
            )
        return httpx.Response(200, json=completion(model, usage=self.usage))

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)
