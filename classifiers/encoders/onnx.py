"""all-MiniLM-L6-v2 served by onnxruntime and ``tokenizers``: same vectors as ``minilm``, no torch.

The ONNX graph is exported from the packaged weights by ``python -m classifiers.build_encoders
--onnx`` (see :mod:`classifiers.build_encoders`), in two variants: ``fp32`` (cosine ~1.0 with the
sentence-transformers model) and a dynamic int8 one (``int8``: per-channel int8 weights on the
MatMuls, about 2.5x faster on one core). ``variant="auto"`` takes the one the build recorded as
its default in ``build.json``: int8 when its mean cosine with the torch model on a sample was at
least 0.98, else fp32.

Encoding follows sentence-transformers: word-pieces truncated at 256, the transformer's last
hidden state mean-pooled over the attention mask, then L2-normalised. The space is the same as
the sentence-transformers encoder's, so a classifier trained with one serves with the other.
Texts are encoded in chunks of similar length so that padding stays short.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from classifiers.encoders.base import Vectors
from classifiers.encoders.paths import onnx_dir, require_files
from classifiers.encoders.sentence import DIM, SPACE
from classifiers.errors import EncoderError

# Most padded tokens run in one session call (rows x longest row) when a batch is split by length.
# Measured on a 2-core Xeon, one ORT thread, 256 varied prompts in batches of 32 (ms per row):
# one call per row 2.00; budget 128 -> 1.53, 512 -> 2.02, 2048 -> 3.36. Small calls keep the
# activations in cache; batching still pays through fewer session and tokenizer calls.
_TOKEN_BUDGET: Final = 128

__all__ = ["DIM", "SPACE", "OnnxMiniLMEncoder", "load"]

MAX_TOKENS: Final = 256
VARIANT_FILES: Final = {"fp32": "model.onnx", "int8": "model_int8.onnx"}
VARIANTS: Final = ("auto", *VARIANT_FILES)
TOKENIZER_FILE: Final = "tokenizer.json"
BUILD_FILE: Final = "build.json"


class OnnxMiniLMEncoder:
    """MiniLM through an onnxruntime session; ``encode`` is safe to call from several threads."""

    def __init__(
        self,
        model_dir: Path | str | None = None,
        *,
        variant: str = "auto",
        threads: int = 1,
        batch_size: int = 64,
    ) -> None:
        if variant not in VARIANTS:
            raise EncoderError(f"minilm-onnx: unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
        if threads < 1 or batch_size < 1:
            raise EncoderError("minilm-onnx: threads and batch_size must be at least 1")
        folder = onnx_dir() if model_dir is None else Path(model_dir).expanduser()
        require_files(folder, [TOKENIZER_FILE], encoder="minilm-onnx", flag="--onnx")
        self._variant = _chosen_variant(folder) if variant == "auto" else variant
        model_file = VARIANT_FILES[self._variant]
        require_files(folder, [model_file], encoder="minilm-onnx", flag="--onnx")
        self._model_path = folder / model_file
        self._session = _session(self._model_path, threads)
        self._input_names = frozenset(i.name for i in self._session.get_inputs())
        self._tokenizer = _tokenizer(folder / TOKENIZER_FILE)
        self._batch_size = batch_size

    @property
    def id(self) -> str:
        return "minilm-onnx"

    @property
    def space(self) -> str:
        return SPACE

    @property
    def dim(self) -> int:
        return DIM

    @property
    def variant(self) -> str:
        """The graph in use: ``fp32`` or ``int8``."""
        return self._variant

    @property
    def model_path(self) -> Path:
        return self._model_path

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Tokenize once, then run the rows in buckets of similar length.

        A batch is padded to its longest row and attention grows with the square of the length,
        so one long prompt in a batch of short ones would multiply the work, and large calls
        fall out of the CPU cache; sorting by token count and capping each call's padded size
        (``_TOKEN_BUDGET``) keeps batching cheaper per row than one call per row.
        """
        n = len(texts)
        out = np.empty((n, DIM), dtype=np.float32)
        if not n:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = [len(e.ids) for e in encodings]
        order = sorted(range(n), key=lengths.__getitem__)
        start = 0
        while start < n:
            end = start + 1
            while (
                end < n
                and end - start < self._batch_size
                and lengths[order[end]] * (end - start + 1) <= _TOKEN_BUDGET
            ):
                end += 1
            rows = order[start:end]
            out[rows] = self._run([encodings[i] for i in rows])
            start = end
        return out

    def _run(self, encodings: Sequence[Any]) -> Vectors:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = np.asarray(self._session.run(None, feeds)[0], dtype=np.float32)
        weights = mask.astype(np.float32)[:, :, None]
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors: Vectors = (pooled / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
        return vectors


def load(
    *, model_dir: str | None = None, variant: str = "auto", threads: int = 1, batch_size: int = 64
) -> OnnxMiniLMEncoder:
    """Registry factory: the ONNX MiniLM encoder built under ``model_dir`` (default: encoder root)."""
    return OnnxMiniLMEncoder(model_dir, variant=variant, threads=threads, batch_size=batch_size)


def _chosen_variant(folder: Path) -> str:
    """The build's recorded default, or ``fp32`` when the recipe is absent or unreadable."""
    try:
        recipe = json.loads((folder / BUILD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "fp32"
    chosen = recipe.get("default_variant") if isinstance(recipe, dict) else None
    return chosen if chosen in VARIANT_FILES else "fp32"


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors (InvalidProtobuf, Fail, ...) derive from Exception
        raise EncoderError(
            f"minilm-onnx: cannot load {path} ({exc}); rebuild it with "
            "`python -m classifiers.build_encoders --onnx --force`"
        ) from exc


def _tokenizer(path: Path) -> Any:
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for a malformed file
        raise EncoderError(f"minilm-onnx: cannot read tokenizer {path}: {exc}") from exc
    tokenizer.enable_truncation(MAX_TOKENS)
    # The shipped tokenizer.json pads every input to a fixed 128; encode() pads each bucket itself.
    tokenizer.no_padding()
    return tokenizer
