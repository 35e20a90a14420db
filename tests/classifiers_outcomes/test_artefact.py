"""Artefact round trip through arrays.npz (no pickle) + meta.json, and refusal of bad artefacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classifiers.outcomes_artefact import ArtefactError, load_artefact, read_meta, save_artefact
from classifiers.outcomes_data import load_outcomes
from classifiers.outcomes_train import EncoderInfo, HeadConfig, train

from .conftest import STRONG, WEAK

ENCODER = EncoderInfo("fake", "fake-8", 8)


def vectors_for(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(n, 8)).astype(np.float32)
    normalised: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return normalised


@pytest.mark.parametrize(
    ("mode", "head"),
    [
        ("two_backend", "logistic"),
        ("two_backend", "knn"),
        ("floor", "logistic"),
        ("floor", "ridge"),
        ("floor", "knn"),
    ],
)
def test_round_trip_predicts_the_same(tmp_path: Path, outcomes_csv: Path, mode: str, head: str) -> None:
    table = load_outcomes(outcomes_csv)
    vectors = vectors_for(table.n)
    router = train(mode, table, vectors, ENCODER, config=HeadConfig(head=head))  # type: ignore[arg-type]
    save_artefact(router, tmp_path / "art", {"data_sha256": table.sha256}, {"apgr": 0.6})
    with np.load(tmp_path / "art" / "arrays.npz", allow_pickle=False) as npz:
        assert all(npz[name].dtype == np.float32 for name in npz.files)
    loaded = load_artefact(tmp_path / "art")
    assert loaded.backends == router.backends
    assert (loaded.cheap, loaded.strong) == (router.cheap, router.strong)
    np.testing.assert_allclose(
        loaded.heads.predict_many(vectors), router.heads.predict_many(vectors), rtol=1e-5
    )
    meta = read_meta(tmp_path / "art")
    assert meta["kind"] == "cost_quality"
    assert meta["encoder"] == {"id": "fake", "space": "fake-8", "dim": 8}
    assert meta["training"]["data_sha256"] == table.sha256
    if mode == "two_backend":
        assert meta["pair"] == {"cheap": WEAK, "strong": STRONG}
        assert [b["target"] for b in meta["backends"]] == ["good_enough"]


def saved(tmp_path: Path, outcomes_csv: Path) -> Path:
    table = load_outcomes(outcomes_csv)
    router = train("two_backend", table, vectors_for(table.n), ENCODER, config=HeadConfig())
    return save_artefact(router, tmp_path / "art", {}, {})


def test_foreign_meta_is_refused(tmp_path: Path, outcomes_csv: Path) -> None:
    path = saved(tmp_path, outcomes_csv)
    meta = json.loads((path / "meta.json").read_text())
    meta["kind"] = "route_classifier"
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ArtefactError, match="not a cost_quality artefact"):
        load_artefact(path)


def test_array_shape_mismatch_is_refused(tmp_path: Path, outcomes_csv: Path) -> None:
    path = saved(tmp_path, outcomes_csv)
    meta = json.loads((path / "meta.json").read_text())
    meta["encoder"]["dim"] = 16
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ArtefactError, match="shape"):
        load_artefact(path)


def test_missing_or_corrupt_files_are_refused(tmp_path: Path, outcomes_csv: Path) -> None:
    with pytest.raises(ArtefactError, match="cannot read artefact metadata"):
        load_artefact(tmp_path / "nothing")
    path = saved(tmp_path, outcomes_csv)
    (path / "arrays.npz").write_bytes(b"not a zip")
    with pytest.raises(ArtefactError, match="unreadable arrays"):
        load_artefact(path)
    (path / "meta.json").write_text("{")
    with pytest.raises(ArtefactError, match="invalid JSON"):
        load_artefact(path)


def test_object_arrays_are_never_unpickled(tmp_path: Path, outcomes_csv: Path) -> None:
    path = saved(tmp_path, outcomes_csv)
    np.savez(path / "arrays.npz", w_0=np.array([object()], dtype=object), b_0=np.zeros(1, dtype=np.float32))
    with pytest.raises(ArtefactError, match="unreadable arrays"):
        load_artefact(path)
