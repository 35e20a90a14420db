"""Shared helpers for the routing benchmarks: data paths, encoder, embedding cache, machine facts.

Run the scripts from the repository root as modules (``python -m benchmarks.routing.<name>``).
Embeddings are cached as ``.npy`` under ``benchmarks/out/embeddings/`` (gitignored), keyed by
encoder id and the SHA-256 of the texts, so re-running a benchmark does not re-encode.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from classifiers.encoders.base import Encoder
from classifiers.outcomes_cli import encode_with_cache

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
OUT_DIR = REPO_ROOT / "benchmarks" / "out"
EMBEDDINGS = OUT_DIR / "embeddings"


def load_bench_encoder(name: str) -> Encoder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from classifiers.encoders import load_encoder

    return load_encoder(name)


def encode_cached(encoder_name: str, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """Encode ``texts`` once per (encoder, texts); the same cache ``--cache-dir`` uses in the CLI."""
    return encode_with_cache(load_bench_encoder(encoder_name), texts, EMBEDDINGS)


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
