"""Shared helpers for the routing benchmarks: data paths, encoder, embedding cache, machine facts.

Run the scripts from the repository root as modules (``python -m benchmarks.routing.<name>``).
Embeddings are cached as ``.npy`` under ``benchmarks/out/embeddings/`` (gitignored), keyed by
encoder id and the SHA-256 of the texts, so re-running a benchmark does not re-encode.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from classifiers.encoders.base import Encoder

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
OUT_DIR = REPO_ROOT / "benchmarks" / "out"


def load_bench_encoder(name: str) -> Encoder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from classifiers.encoders import load_encoder

    return load_encoder(name)


def texts_sha256(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def encode_cached(encoder_name: str, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """Encode ``texts`` once per (encoder, texts) and reuse the ``.npy`` afterwards."""
    cache_dir = OUT_DIR / "embeddings"
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{encoder_name}_{texts_sha256(texts)[:20]}.npy"
    if path.exists():
        cached = np.load(path, allow_pickle=False)
        if cached.shape[0] == len(texts):
            return np.asarray(cached, dtype=np.float32)
    vectors = load_bench_encoder(encoder_name).encode(texts)
    np.save(path, vectors, allow_pickle=False)
    return vectors


def machine_facts() -> dict[str, str]:
    """nproc, CPU model, Python and library versions, for RESULTS.md."""
    import matplotlib
    import sklearn

    model = "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu_model": model,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "matplotlib": matplotlib.__version__,
    }
