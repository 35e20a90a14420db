from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from classifiers.encoders import Encoder, EncoderError, load_encoder
from classifiers.encoders.paths import EncoderFilesMissing
from classifiers.encoders.static import StaticEncoder

TEXTS = ["hi", "book a table for two tonight", "how do I reset my online banking password", ""]


def test_missing_folder_names_the_build_command(tmp_path: Path) -> None:
    with pytest.raises(EncoderFilesMissing, match=r"build_encoders --static"):
        StaticEncoder(tmp_path)


def test_corrupt_model_is_a_clear_error(tmp_path: Path) -> None:
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        (tmp_path / name).write_text("{}")
    with pytest.raises(EncoderError, match=r"static: cannot load"):
        StaticEncoder(tmp_path)


def test_built_encoder_gives_unit_float32_rows(built_static_dir: Path) -> None:
    encoder = StaticEncoder(built_static_dir)
    assert isinstance(encoder, Encoder)
    assert (encoder.id, encoder.space, encoder.dim) == ("static", "static-minilm-256", 256)
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 256)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert not vectors[3].any()  # no word-piece, no direction
    assert encoder.encode([]).shape == (0, 256)


def test_batches_agree_with_single_texts_and_threads(built_static_dir: Path) -> None:
    encoder = StaticEncoder(built_static_dir, batch_size=2)
    together = encoder.encode(TEXTS)
    np.testing.assert_allclose(together, np.vstack([encoder.encode([t]) for t in TEXTS]), atol=1e-6)
    with ThreadPoolExecutor(4) as pool:
        for result in pool.map(lambda _: encoder.encode(TEXTS), range(8)):
            np.testing.assert_allclose(result, together, atol=1e-6)


def test_paraphrases_are_closer_than_unrelated_texts(built_static_dir: Path) -> None:
    a, b, c = StaticEncoder(built_static_dir).encode(
        ["how do I reset my password", "I forgot my password, how can I change it", "the cat sat on the mat"]
    )
    assert float(a @ b) > float(a @ c) + 0.2


def test_registry_builds_it_from_a_folder(built_static_dir: Path) -> None:
    assert load_encoder("static", model_dir=str(built_static_dir)).space == "static-minilm-256"
