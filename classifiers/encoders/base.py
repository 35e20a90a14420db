"""The one interface every encoder implements.

An encoder turns texts into L2-normalised float32 rows. Two encoders whose ``space`` is equal
produce vectors that a classifier may be trained on with one and served with the other
(for example the sentence-transformers and ONNX builds of the same MiniLM weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Encoder(Protocol):
    @property
    def id(self) -> str:
        """Registry name, e.g. ``minilm``, ``minilm-onnx``, ``static``, ``hash``."""
        ...

    @property
    def space(self) -> str:
        """Identity of the vector space; artefacts refuse encoders of another space."""
        ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Return an ``(len(texts), dim)`` float32 array with L2-normalised rows."""
        ...
