"""Trained artefacts: a directory holding ``arrays.npz`` and ``meta.json``.

``arrays.npz`` holds the head's numeric arrays (``np.savez``; read with ``allow_pickle=False``,
so loading an artefact never executes code). ``meta.json`` says what the arrays mean and where
they came from::

    {"format_version": 1, "labels": [...],
     "head": {"kind": "logreg", "params": {...}, "arrays": {"weights": [4, 384], ...}},
     "encoder": {"id": "minilm", "space": "all-MiniLM-L6-v2", "dim": 384},
     "versions": {"numpy": ..., "scikit-learn": ..., "classifiers": ...},
     "training_data": {"sha256": ..., "source": ..., "counts": {"small": 120, ...}},
     "cv_metrics": {...} | null, "created": "2025-01-01T00:00:00+00:00"}

:func:`load_artefact` refuses an artefact whose vector space or dimension differs from the
encoder it is given: a head trained on one space gives confident nonsense on another.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

import classifiers
from classifiers.encoders.base import Encoder
from classifiers.errors import ArtefactError
from classifiers.heads import HEADS, Array, Head

FORMAT_VERSION = 1
ARRAYS_FILE = "arrays.npz"
META_FILE = "meta.json"


@dataclass(frozen=True)
class EncoderInfo:
    id: str
    space: str
    dim: int


@dataclass(frozen=True)
class ArtefactMeta:
    path: str
    labels: tuple[str, ...]
    head_kind: str
    encoder: EncoderInfo
    raw: Mapping[str, Any]
    """The whole ``meta.json`` (read-only view), for reports."""


@dataclass(frozen=True)
class Artefact:
    meta: ArtefactMeta
    head: Head


def save_artefact(
    path: str | Path,
    head: Head,
    encoder: Encoder,
    *,
    data_sha256: str,
    label_counts: Mapping[str, int],
    data_source: str = "",
    cv_metrics: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``head`` (trained on ``encoder``'s vectors) into the directory ``path``."""
    if head.input_dim != encoder.dim:
        raise ArtefactError(
            f"head expects {head.input_dim}-d vectors but encoder {encoder.id!r} is {encoder.dim}-d"
        )
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    arrays = head.to_arrays()
    meta = {
        "format_version": FORMAT_VERSION,
        "labels": list(head.labels),
        "head": {
            "kind": head.kind,
            "params": head.params(),
            "arrays": {k: list(v.shape) for k, v in arrays.items()},
        },
        "encoder": {"id": encoder.id, "space": encoder.space, "dim": encoder.dim},
        "versions": _versions(),
        "training_data": {"sha256": data_sha256, "source": data_source, "counts": dict(label_counts)},
        "cv_metrics": dict(cv_metrics) if cv_metrics is not None else None,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    # Arrays first, meta last: a directory with a meta.json is a complete artefact.
    with (out / ARRAYS_FILE).open("wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out


def _versions() -> dict[str, str]:
    try:
        sklearn = metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:
        sklearn = "not installed"
    return {"numpy": np.__version__, "scikit-learn": sklearn, "classifiers": classifiers.__version__}


def read_meta(path: str | Path) -> ArtefactMeta:
    """Read and check ``meta.json`` alone (no arrays, no encoder)."""
    root = Path(path)
    file = root / META_FILE
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtefactError(f"artefact {root}: {file} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtefactError(f"artefact {root}: {file} is unreadable or not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ArtefactError(f"artefact {root}: {file} is not a JSON object")
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtefactError(
            f"artefact {root}: format version {version!r} in {file}; this build reads version "
            f"{FORMAT_VERSION}: retrain with `gateway train`"
        )
    try:
        labels = tuple(str(x) for x in raw["labels"])
        kind = str(raw["head"]["kind"])
        enc = raw["encoder"]
        encoder = EncoderInfo(str(enc["id"]), str(enc["space"]), int(enc["dim"]))
        if not isinstance(raw["head"]["params"], dict) or not isinstance(raw["head"]["arrays"], dict):
            raise TypeError("head.params and head.arrays must be objects")
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtefactError(f"artefact {root}: {file} lacks a required field ({exc!r})") from None
    if kind not in HEADS:
        raise ArtefactError(
            f"artefact {root}: unknown head kind {kind!r} in {file}; known: {', '.join(HEADS)}"
        )
    return ArtefactMeta(str(root), labels, kind, encoder, MappingProxyType(raw))


def load_artefact(path: str | Path, encoder: Encoder) -> Artefact:
    """Load an artefact for serving with ``encoder``; every mismatch raises :class:`ArtefactError`."""
    meta = read_meta(path)
    trained = meta.encoder
    if encoder.space != trained.space or encoder.dim != trained.dim:
        raise ArtefactError(
            f"artefact {meta.path} was trained with encoder {trained.id!r} "
            f"(space {trained.space}, {trained.dim}-d); the policy loads {encoder.id!r} "
            f"(space {encoder.space}, {encoder.dim}-d): retrain with "
            f"`gateway train EXAMPLES --encoder {encoder.id} --out {meta.path}`"
        )
    arrays = _read_arrays(Path(path) / ARRAYS_FILE, meta)
    try:
        head = HEADS[meta.head_kind].from_arrays(arrays, meta.raw["head"]["params"])
    except ValueError as exc:
        raise ArtefactError(f"artefact {meta.path}: {ARRAYS_FILE} does not fit {META_FILE}: {exc}") from None
    if head.labels != meta.labels:
        raise ArtefactError(
            f"artefact {meta.path}: head labels {list(head.labels)} differ from {list(meta.labels)}"
        )
    if head.input_dim != trained.dim:
        raise ArtefactError(
            f"artefact {meta.path}: head takes {head.input_dim}-d vectors, meta says {trained.dim}-d"
        )
    return Artefact(meta, head)


def _read_arrays(file: Path, meta: ArtefactMeta) -> dict[str, Array]:
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise ArtefactError(f"artefact {meta.path}: {file} not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ArtefactError(
            f"artefact {meta.path}: {file} is corrupt or not an .npz archive ({exc})"
        ) from None
    expected: dict[str, Any] = dict(meta.raw["head"]["arrays"])
    if set(arrays) != set(expected):
        raise ArtefactError(
            f"artefact {meta.path}: {file} holds arrays {sorted(arrays)}, "
            f"{META_FILE} lists {sorted(expected)}"
        )
    for name, array in arrays.items():
        if list(array.shape) != expected[name]:
            raise ArtefactError(
                f"artefact {meta.path}: array {name!r} in {file} has shape {list(array.shape)}, "
                f"{META_FILE} says {expected[name]}"
            )
        if array.dtype.kind not in "fiu":
            raise ArtefactError(
                f"artefact {meta.path}: array {name!r} in {file} is not numeric ({array.dtype})"
            )
    return arrays
