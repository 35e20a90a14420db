"""Saving and loading cost/quality artefacts: ``arrays.npz`` (no pickle) + ``meta.json``.

Layout of an artefact directory::

    meta.json    {"kind": "cost_quality", "format_version": 1, "mode": "two_backend" | "floor",
                  "encoder": {"id", "space", "dim"},
                  "head": {"type": "logistic" | "ridge" | "knn", "sigmoid", "k", "temperature"},
                  "pair": {"cheap", "strong"} | null,
                  "backends": [{"name", "target": "good_enough" | "quality",
                                "arrays": {"weight": "w_0", "bias": "b_0"} | {"target": "y_0"}}],
                  "shared_arrays": {} | {"points": "knn_points", "prior": "knn_prior"},
                  "training": {"data_sha256", "source", "rows", ...}, "metrics": {...}}
    arrays.npz   float32 arrays named in meta.json, read with ``allow_pickle=False``
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from classifiers import errors
from classifiers.outcomes_router import CostQualityError, CostQualityRouter, KnnHeads, LinearHeads

KIND = "cost_quality"
FORMAT_VERSION = 1
META = "meta.json"
ARRAYS = "arrays.npz"


class ArtefactError(errors.ArtefactError, CostQualityError):
    """A missing, foreign or inconsistent cost/quality artefact (message is one line)."""


def save_artefact(
    router: CostQualityRouter,
    directory: str | Path,
    training: Mapping[str, Any],
    metrics: Mapping[str, Any],
) -> Path:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, npt.NDArray[np.float32]] = {}
    backends: list[dict[str, Any]] = []
    target = "good_enough" if router.mode == "two_backend" else "quality"
    heads = router.heads
    if isinstance(heads, LinearHeads):
        head: dict[str, Any] = {"type": "logistic" if heads.sigmoid else "ridge", "sigmoid": heads.sigmoid}
        shared: dict[str, str] = {}
        for i, name in enumerate(router.backends):
            arrays[f"w_{i}"] = heads.weights[i].astype(np.float32)
            arrays[f"b_{i}"] = heads.bias[i : i + 1].astype(np.float32)
            backends.append(
                {"name": name, "target": target, "arrays": {"weight": f"w_{i}", "bias": f"b_{i}"}}
            )
    else:
        head = {"type": "knn", "k": heads.k, "temperature": heads.temperature}
        shared = {"points": "knn_points", "prior": "knn_prior"}
        arrays["knn_points"] = heads.points.astype(np.float32)
        arrays["knn_prior"] = heads.prior.astype(np.float32)
        for i, name in enumerate(router.backends):
            arrays[f"y_{i}"] = heads.targets[:, i].astype(np.float32)
            backends.append({"name": name, "target": target, "arrays": {"target": f"y_{i}"}})
    meta = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "mode": router.mode,
        "encoder": {"id": router.encoder_id, "space": router.encoder_space, "dim": router.dim},
        "head": head,
        "pair": {"cheap": router.cheap, "strong": router.strong} if router.mode == "two_backend" else None,
        "backends": backends,
        "shared_arrays": shared,
        "training": dict(training),
        "metrics": dict(metrics),
    }
    np.savez(out / ARRAYS, **arrays)  # type: ignore[arg-type]
    (out / META).write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return out


def read_meta(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / META
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise ArtefactError(f"{path}: cannot read artefact metadata") from None
    except json.JSONDecodeError as exc:
        raise ArtefactError(f"{path}: invalid JSON ({exc.msg})") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise ArtefactError(f"{path}: not a cost_quality artefact")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtefactError(f"{path}: unsupported format_version {meta.get('format_version')!r}")
    return meta


def load_artefact(directory: str | Path) -> CostQualityRouter:
    """The runtime router of an artefact directory; every inconsistency is an ``ArtefactError``."""
    root = Path(directory)
    meta = read_meta(root)
    try:
        with np.load(root / ARRAYS, allow_pickle=False) as npz:
            arrays = {name: np.asarray(npz[name]) for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ArtefactError(f"{root / ARRAYS}: unreadable arrays ({type(exc).__name__})") from None
    try:
        return _build(meta, arrays)
    except (KeyError, TypeError, IndexError) as exc:
        raise ArtefactError(f"{root / META}: malformed or inconsistent with arrays ({exc!r})") from None


def _build(meta: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]]) -> CostQualityRouter:
    encoder = meta["encoder"]
    dim = int(encoder["dim"])
    names = tuple(str(b["name"]) for b in meta["backends"])
    head = meta["head"]

    def get(name: str, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
        array = arrays[name]
        if array.dtype.kind != "f" or array.shape != shape:
            raise ArtefactError(f"array {name!r} has shape {array.shape}, expected {shape}")
        return array.astype(np.float32)

    heads: LinearHeads | KnnHeads
    if head["type"] in {"logistic", "ridge"}:
        weights = np.stack([get(b["arrays"]["weight"], (dim,)) for b in meta["backends"]])
        bias = np.concatenate([get(b["arrays"]["bias"], (1,)) for b in meta["backends"]])
        heads = LinearHeads(weights, bias, sigmoid=bool(head["sigmoid"]))
    elif head["type"] == "knn":
        points = arrays[meta["shared_arrays"]["points"]]
        n = int(points.shape[0])
        targets = np.stack([get(b["arrays"]["target"], (n,)) for b in meta["backends"]], axis=1)
        heads = KnnHeads(
            get(meta["shared_arrays"]["points"], (n, dim)),
            targets,
            int(head["k"]),
            float(head["temperature"]),
            get(meta["shared_arrays"]["prior"], (len(names),)),
        )
    else:
        raise ArtefactError(f"unknown head type {head['type']!r}")
    pair = meta.get("pair") or {}
    return CostQualityRouter(
        mode=meta["mode"],
        backends=names,
        heads=heads,
        encoder_id=str(encoder["id"]),
        encoder_space=str(encoder["space"]),
        dim=dim,
        cheap=pair.get("cheap"),
        strong=pair.get("strong"),
    )
