"""Exact, offline token counting for the eligibility rule.

The encodings are compiled into ``bpe-openai`` (no vocabulary download). Chat requests are
counted the way OpenAI bills them: each message costs its content plus a few framing tokens,
and the reply is primed with three more.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

_TOKENS_PER_MESSAGE = 3
_REPLY_PRIMING = 3
# An image part is billed by the provider from its size; for the context check we count a
# conservative flat amount rather than decoding it.
_IMAGE_PART_TOKENS = 765


class _Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


class TokenCounter:
    def __init__(self, encoding_name: str = "o200k_base") -> None:
        self.encoding_name = encoding_name
        with warnings.catch_warnings():
            # bpe-openai reads its bundled vocabularies with a deprecated importlib API.
            warnings.simplefilter("ignore", DeprecationWarning)
            import bpe_openai

            self._encoding: _Encoding = bpe_openai.get_encoding(encoding_name)

    def count_text(self, text: str) -> int:
        return len(self._encoding.encode_ordinary(text)) if text else 0

    def count_messages(self, messages: Sequence[Mapping[str, Any]]) -> int:
        total = _REPLY_PRIMING
        for message in messages:
            total += _TOKENS_PER_MESSAGE
            for key in ("role", "name"):
                value = message.get(key)
                if isinstance(value, str):
                    total += self.count_text(value)
            total += self._count_content(message.get("content"))
            tool_calls = message.get("tool_calls")
            if isinstance(tool_calls, list):
                total += self.count_text(repr(tool_calls))
        return total

    def count_prompt(self, prompt: str | Sequence[str]) -> int:
        if isinstance(prompt, str):
            return self.count_text(prompt)
        return sum(self.count_text(p) for p in prompt)

    def _count_content(self, content: Any) -> int:
        if isinstance(content, str):
            return self.count_text(content)
        if not isinstance(content, list):
            return 0
        total = 0
        for part in content:
            if not isinstance(part, Mapping):
                continue
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                total += self.count_text(part["text"])
            elif part.get("type") in ("image_url", "input_image"):
                total += _IMAGE_PART_TOKENS
        return total
