"""Deterministic answer text and token counts (pure; no sockets).

Token counts use the offline `o200k_base` tokenizer from `bpe_openai`. Answers are built
from whole tokens, so `completion_tokens` is exactly the number of pieces produced and
`max_tokens` cuts on a token boundary. Both caches are bounded and owned by an instance.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

_CACHE_LIMIT = 4096
_SNIPPET_CHARS = 60

_FILLER = (
    "A real model would work through the question here; this backend only shapes the reply like one.",
    "The gateway chose this backend for the request, which is what this reply is here to show.",
    "Latency, token counts and streaming pace follow the simulated model's profile.",
    "The usage block is counted with the o200k_base tokenizer, as a real backend would report it.",
    "Point the policy's base_url at a real provider to get real answers.",
    "Timeouts, resets and malformed bodies can be switched on at run time to test failure handling.",
)


class Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...

    def decode_single_token_bytes(self, token: int) -> bytes: ...


def load_encoding() -> Encoding:
    with warnings.catch_warnings():
        # bpe_openai reads its bundled vocabularies with a deprecated importlib.resources call
        warnings.simplefilter("ignore", DeprecationWarning)
        import bpe_openai

        encoding: Encoding = bpe_openai.get_encoding("o200k_base")
    return encoding


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer, token by token: `pieces[i]` is the text of token i, `pieces_json[i]` its JSON."""

    pieces: tuple[str, ...]
    pieces_json: tuple[bytes, ...]

    def text(self, n: int) -> str:
        return "".join(self.pieces[:n])


class Tokens:
    """Counts prompt tokens and builds answers, with small bounded caches."""

    def __init__(self, encoding: Encoding) -> None:
        self._encoding = encoding
        self._counts: dict[str, int] = {}
        self._answers: dict[tuple[str, str, str, int, int], Answer] = {}

    def count(self, text: str) -> int:
        got = self._counts.get(text)
        if got is None:
            got = len(self._encoding.encode_ordinary(text))
            if len(self._counts) >= _CACHE_LIMIT:
                self._counts.clear()
            self._counts[text] = got
        return got

    def chat_prompt_tokens(self, messages: Sequence[Any]) -> int:
        """OpenAI's accounting for chat: 3 per message, 1 per name, 3 to prime the reply."""
        total = 3
        for message in messages:
            total += 3
            if isinstance(message, dict):
                total += self.count(content_text(message.get("content")))
                name = message.get("name")
                if isinstance(name, str):
                    total += 1 + self.count(name)
        return total

    def answer(self, model: str, description: str, question: str, seed: int, length: int) -> Answer:
        key = (model, description, question, seed, length)
        got = self._answers.get(key)
        if got is None:
            got = self._build(model, description, question, seed, length)
            if len(self._answers) >= _CACHE_LIMIT:
                self._answers.clear()
            self._answers[key] = got
        return got

    def _build(self, model: str, description: str, question: str, seed: int, length: int) -> Answer:
        opening = f'{model} (simulated {description}) here. You asked: "{snippet(question)}".'
        start = (zlib.crc32(f"{model}\0{question}".encode()) ^ seed) % len(_FILLER)
        parts = [opening]
        tokens = self._encoding.encode_ordinary(opening)
        i = 0
        while len(tokens) < length:
            sentence = " " + _FILLER[(start + i) % len(_FILLER)]
            parts.append(sentence)
            tokens += self._encoding.encode_ordinary(sentence)
            i += 1
        pieces = _decode_pieces(self._encoding, tokens[:length])
        return Answer(pieces, tuple(orjson.dumps(p) for p in pieces))


def _decode_pieces(encoding: Encoding, tokens: Sequence[int]) -> tuple[str, ...]:
    """One string per token; a token that splits a UTF-8 character joins the next one
    (the empty string stands in for it, so the count stays exact)."""
    pieces: list[str] = []
    pending = b""
    for token in tokens:
        pending += encoding.decode_single_token_bytes(token)
        try:
            pieces.append(pending.decode("utf-8"))
            pending = b""
        except UnicodeDecodeError:
            pieces.append("")
    if pending:
        pieces[-1] = pending.decode("utf-8", errors="replace")
    return tuple(pieces)


def content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def last_user_text(messages: Sequence[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return content_text(messages[-1].get("content")) if messages and isinstance(messages[-1], dict) else ""


def snippet(question: str) -> str:
    flat = " ".join(question.split())
    if len(flat) <= _SNIPPET_CHARS:
        return flat
    return flat[:_SNIPPET_CHARS].rstrip() + "..."
