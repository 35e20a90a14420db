"""Static word-piece embeddings distilled from all-MiniLM-L6-v2 (model2vec, 256-d PCA).

``python -m classifiers.build_encoders --static`` distils them from the packaged MiniLM weights:
each of the ~29.5k word-pieces is run through the transformer once, the outputs are reduced to
256 dimensions by PCA and weighted (SIF). Serving is a table look-up and a mean, about 0.1 ms
a query, with model2vec's ``StaticModel`` (numpy and ``tokenizers`` only, no torch).

The vectors live in their own space (``static-minilm-256``): classifiers trained on MiniLM
vectors do not serve on these, and the other way round. A text with no known word-piece (the
empty string) encodes to a zero row.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from classifiers.encoders.base import Vectors
from classifiers.encoders.paths import require_files, static_dir
from classifiers.errors import EncoderError

SPACE: Final = "static-minilm-256"
MODEL_FILES: Final = ("model.safetensors", "tokenizer.json", "config.json")


class StaticEncoder:
    """A model2vec static model; ``encode`` is safe to call from several threads."""

    def __init__(self, model_dir: Path | str | None = None, *, batch_size: int = 1024) -> None:
        folder = static_dir() if model_dir is None else Path(model_dir).expanduser()
        require_files(folder, MODEL_FILES, encoder="static", flag="--static")
        self._model = _load_static_model(folder)
        self._dim = int(self._model.dim)
        self._batch_size = batch_size

    @property
    def id(self) -> str:
        return "static"

    @property
    def space(self) -> str:
        return SPACE

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        raw = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            show_progress_bar=False,
            use_multiprocessing=False,
            normalize=False,
        )
        # The table is stored as float16; normalise in float32 so rows have unit length.
        vectors = np.asarray(raw, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit: Vectors = vectors / np.maximum(norms, 1e-12)
        return unit


def load(*, model_dir: str | None = None, batch_size: int = 1024) -> StaticEncoder:
    """Registry factory: the static encoder built under ``model_dir`` (default: encoder root)."""
    return StaticEncoder(model_dir, batch_size=batch_size)


def _load_static_model(folder: Path) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from model2vec import StaticModel

    try:
        return StaticModel.from_pretrained(folder)
    except Exception as exc:  # e.g. safetensors' SafetensorError derives from Exception only
        raise EncoderError(
            f"static: cannot load {folder} ({exc}); rebuild it with "
            "`python -m classifiers.build_encoders --static --force`"
        ) from exc
