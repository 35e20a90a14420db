from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classifiers.artefact import FORMAT_VERSION, load_artefact, read_meta, save_artefact
from classifiers.data import Example, dataset_sha256
from classifiers.encoders.hashing import HashingEncoder
from classifiers.errors import ArtefactError
from classifiers.heads import Head
from classifiers.training import train
from tests.classifiers.synthetic import make_examples


@pytest.fixture(scope="module")
def trained() -> tuple[Head, dict[str, object]]:
    head, report = train(make_examples(), HashingEncoder(256), "logreg", cv_folds=3, progress=False)
    assert report is not None
    return head, report.to_json()


def _save(path: Path, trained: tuple[Head, dict[str, object]], encoder: HashingEncoder) -> Path:
    head, metrics = trained
    return save_artefact(
        path, head, encoder, data_sha256="abc123", label_counts={"rag": 3, "small": 4}, cv_metrics=metrics
    )


def test_round_trip_and_meta(
    tmp_path: Path, trained: tuple[Head, dict[str, object]], encoder: HashingEncoder
) -> None:
    out = _save(tmp_path / "art", trained, encoder)
    assert sorted(p.name for p in out.iterdir()) == ["arrays.npz", "meta.json"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["labels"] == ["frontier", "long_context", "rag", "small"]
    assert meta["head"]["kind"] == "logreg"
    assert meta["head"]["arrays"]["weights"] == [4, 256]
    assert meta["encoder"] == {"id": "hash", "space": "hash-256", "dim": 256}
    assert set(meta["versions"]) == {"numpy", "scikit-learn", "classifiers"}
    assert meta["training_data"]["sha256"] == "abc123"
    assert meta["training_data"]["counts"] == {"rag": 3, "small": 4}
    assert {"accuracy", "macro_f1", "per_label", "confusion"} <= set(meta["cv_metrics"])
    assert meta["created"].endswith("+00:00")

    artefact = load_artefact(out, HashingEncoder(256))
    X = encoder.encode(["what is the capital of spain", "prove the graph theorem rigorously"])
    np.testing.assert_allclose(artefact.head.predict_proba(X), trained[0].predict_proba(X))
    assert artefact.meta.encoder.space == "hash-256"


def test_refuses_other_space(
    tmp_path: Path, trained: tuple[Head, dict[str, object]], encoder: HashingEncoder
) -> None:
    out = _save(tmp_path / "art", trained, encoder)
    with pytest.raises(ArtefactError) as info:
        load_artefact(out, HashingEncoder(128))
    message = str(info.value)
    assert "trained with encoder 'hash' (space hash-256, 256-d)" in message
    assert "the policy loads 'hash' (space hash-128, 128-d)" in message
    assert "gateway train EXAMPLES --encoder hash" in message


def test_missing_and_corrupt_files_are_named(
    tmp_path: Path, trained: tuple[Head, dict[str, object]], encoder: HashingEncoder
) -> None:
    with pytest.raises(ArtefactError, match=r"meta\.json not found"):
        load_artefact(tmp_path / "nothing", encoder)
    out = _save(tmp_path / "art", trained, encoder)
    (out / "arrays.npz").write_bytes(b"not a zip at all")
    with pytest.raises(ArtefactError, match=r"arrays\.npz is corrupt"):
        load_artefact(out, encoder)
    (out / "arrays.npz").unlink()
    with pytest.raises(ArtefactError, match=r"arrays\.npz not found"):
        load_artefact(out, encoder)
    (out / "meta.json").write_text("{broken")
    with pytest.raises(ArtefactError, match=r"meta\.json is unreadable or not JSON"):
        read_meta(out)


def test_shape_and_version_mismatches(
    tmp_path: Path, trained: tuple[Head, dict[str, object]], encoder: HashingEncoder
) -> None:
    out = _save(tmp_path / "art", trained, encoder)
    meta = json.loads((out / "meta.json").read_text())
    meta["head"]["arrays"]["weights"] = [4, 255]
    (out / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ArtefactError, match=r"'weights'.*shape \[4, 256\].*says \[4, 255\]"):
        load_artefact(out, encoder)
    meta["format_version"] = 99
    (out / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ArtefactError, match="format version 99"):
        load_artefact(out, encoder)


def test_object_arrays_are_refused_without_unpickling(
    tmp_path: Path, trained: tuple[Head, dict[str, object]], encoder: HashingEncoder
) -> None:
    out = _save(tmp_path / "art", trained, encoder)
    arrays = dict(np.load(out / "arrays.npz"))
    arrays["bias"] = np.array([object()] * 4, dtype=object)
    np.savez(out / "arrays.npz", **arrays)
    with pytest.raises(ArtefactError, match=r"arrays\.npz is corrupt"):
        load_artefact(out, encoder)


def test_dataset_digest_ignores_surrounding_whitespace() -> None:
    a = [Example("hello", "small"), Example("world", "rag")]
    b = [Example("  hello ", "small "), Example("world", "rag")]
    assert dataset_sha256(a) == dataset_sha256(b)
    assert dataset_sha256(a) != dataset_sha256(a[::-1])
