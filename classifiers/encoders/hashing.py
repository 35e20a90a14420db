"""A deterministic feature-hashing encoder: word unigrams and bigrams, signed, L2-normalised.

It needs nothing beyond numpy, gives the same vector for the same text on every machine and
Python build (CRC-32, not ``hash()``), and encodes a short query in microseconds. It is a
stand-in for tests and a floor for comparisons, not a semantic model.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Sequence

import numpy as np

from classifiers.encoders.base import Vectors

_WORD = re.compile(r"\w+")
_EMPTY_MARKER = "\x00empty"


class HashingEncoder:
    """Each token (unigram or ``"a b"`` bigram) adds ±1 to one of ``dim`` buckets."""

    def __init__(self, dim: int = 256) -> None:
        if dim < 2:
            raise ValueError(f"hash encoder dim must be at least 2, got {dim}")
        self._dim = dim

    @property
    def id(self) -> str:
        return "hash"

    @property
    def space(self) -> str:
        return f"hash-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in _tokens(text):
                digest = zlib.crc32(token.encode("utf-8"))
                out[row, digest % self._dim] += 1.0 if (digest >> 31) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        # Opposite-signed collisions can cancel to zero; fall back to the empty-text vector.
        zero = norms[:, 0] == 0.0
        if zero.any():
            out[zero] = self._empty_vector()
            norms[zero] = 1.0
        out /= norms
        return out

    def _empty_vector(self) -> Vectors:
        vector = np.zeros(self._dim, dtype=np.float32)
        vector[zlib.crc32(_EMPTY_MARKER.encode()) % self._dim] = 1.0
        return vector


def _tokens(text: str) -> list[str]:
    words = _WORD.findall(text.casefold())
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def load(*, dim: int = 256) -> HashingEncoder:
    return HashingEncoder(dim)
