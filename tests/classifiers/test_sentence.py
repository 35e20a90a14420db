"""The real MiniLM encoder: loads packaged weights from disk (several seconds), hence ``slow``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifiers.artefact import load_artefact, save_artefact
from classifiers.data import dataset_sha256
from classifiers.encoders import load_encoder
from classifiers.encoders.hashing import HashingEncoder
from classifiers.errors import ArtefactError
from classifiers.model import RouteModel
from classifiers.training import train
from tests.classifiers.synthetic import make_examples

pytestmark = pytest.mark.slow


def test_minilm_trains_round_trips_and_refuses_another_space(tmp_path: Path) -> None:
    encoder = load_encoder("minilm")
    assert (encoder.id, encoder.space, encoder.dim) == ("minilm", "all-MiniLM-L6-v2", 384)
    vectors = encoder.encode(["What is the capital of France?", "Quelle est la capitale de la France ?", ""])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert float(vectors[0] @ vectors[1]) > 0.5
    assert encoder.encode([]).shape == (0, 384)

    examples = make_examples(per_label=12)
    head, report = train(examples, encoder, "logreg", cv_folds=2, progress=False)
    assert report is not None and report.accuracy > 0.5  # chance is 0.25
    counts = {label: 12 for label in head.labels}
    out = save_artefact(
        tmp_path / "art", head, encoder, data_sha256=dataset_sha256(examples), label_counts=counts
    )

    model = RouteModel.from_artefact(out, encoder)
    texts = ["what is the capital of spain holiday", "prove rigorously the graph theorem step by step"]
    assert [p.label for p in model.predict(texts)] == ["small", "frontier"]
    with pytest.raises(
        ArtefactError, match=r"trained with encoder 'minilm' \(space all-MiniLM-L6-v2, 384-d\)"
    ):
        load_artefact(out, HashingEncoder(384))
