"""Shared pieces of the encoder benchmarks: datasets, encoders by name, cached vectors, few-shot splits."""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classifiers.encoders.base import Encoder

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "benchmarks" / "out" / "encoders"
DATASETS = ("clinc150", "banking77")
ENCODERS = ("minilm", "minilm-onnx", "static")
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Split:
    texts: tuple[str, ...]
    labels: np.ndarray  # int64 indices into Dataset.names


@dataclass(frozen=True)
class Dataset:
    name: str
    names: tuple[str, ...]
    train: Split
    test: Split


def load_dataset(name: str, data_dir: Path) -> Dataset:
    if name == "clinc150":
        raw = json.loads((data_dir / "intent" / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
        train_rows, test_rows = raw["train"], raw["test"]  # in-scope only; oos_* are separate keys
    elif name == "banking77":
        folder = data_dir / "intent" / "banking77"
        train_rows, test_rows = (_csv_rows(folder / f"{part}.csv") for part in ("train", "test"))
    else:
        raise ValueError(f"unknown dataset {name!r}")
    names = tuple(sorted({label for _, label in train_rows}))
    index = {label: i for i, label in enumerate(names)}

    def split(rows: Sequence[Sequence[str]]) -> Split:
        return Split(tuple(t for t, _ in rows), np.array([index[label] for _, label in rows], dtype=np.int64))

    return Dataset(name, names, split(train_rows), split(test_rows))


def _csv_rows(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row["text"], row["category"]) for row in csv.DictReader(handle)]


def make_encoder(name: str, *, threads: int = 1) -> Encoder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from classifiers.encoders.onnx import OnnxMiniLMEncoder
    from classifiers.encoders.sentence import load as load_sentence
    from classifiers.encoders.static import StaticEncoder

    factories: dict[str, Callable[[], Encoder]] = {
        "minilm": load_sentence,
        "minilm-onnx": lambda: OnnxMiniLMEncoder(threads=threads),
        "minilm-onnx-fp32": lambda: OnnxMiniLMEncoder(variant="fp32", threads=threads),
        "static": StaticEncoder,
    }
    return factories[name]()


def cached_vectors(encoder_name: str, dataset: Dataset, part: str, out_dir: Path) -> np.ndarray:
    """Vectors of ``dataset.<part>`` by the encoder, cached as .npy under ``out_dir``."""
    path = out_dir / "vectors" / f"{encoder_name}-{dataset.name}-{part}.npy"
    if path.is_file():
        return np.load(path)
    texts = getattr(dataset, part).texts
    encoder = make_encoder(encoder_name, threads=os.cpu_count() or 1)
    started = time.perf_counter()
    vectors = encoder.encode(list(texts))
    print(
        f"  encoded {len(texts)} {dataset.name}/{part} texts with {encoder_name} in {time.perf_counter() - started:.1f} s"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def few_shot_rows(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Row indices with ``per_class`` examples of every label (all rows when ``None``)."""
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in np.unique(labels)]
    return np.sort(np.concatenate(picked))


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "loadavg_at_start": " ".join(map(str, os.getloadavg())),
    }
