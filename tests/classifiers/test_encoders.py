from __future__ import annotations

import numpy as np
import pytest

from classifiers.encoders import Encoder, EncoderError, known_encoders, load_encoder
from classifiers.encoders.hashing import HashingEncoder


def test_hash_encoder_is_deterministic_normalised_float32() -> None:
    encoder = HashingEncoder(64)
    a = encoder.encode(["Hello   world, how are you?", "a completely different sentence"])
    b = HashingEncoder(64).encode(["hello world how are you", "a completely different sentence"])
    assert a.shape == (2, 64)
    assert a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)
    # Case and punctuation do not matter; word order and words do.
    np.testing.assert_allclose(a, b)
    assert float(a[0] @ a[1]) < 0.9


def test_hash_encoder_uses_bigrams() -> None:
    encoder = HashingEncoder(1024)
    ab, ba = encoder.encode(["dog bites man", "man bites dog"])
    assert float(ab @ ba) < 0.999


def test_hash_encoder_empty_text_gives_unit_vector() -> None:
    vectors = HashingEncoder().encode(["", "   "])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert HashingEncoder().encode([]).shape == (0, 256)


def test_hash_encoder_identity() -> None:
    encoder = HashingEncoder(128)
    assert (encoder.id, encoder.space, encoder.dim) == ("hash", "hash-128", 128)
    assert isinstance(encoder, Encoder)
    with pytest.raises(ValueError, match="at least 2"):
        HashingEncoder(1)


def test_registry_builds_hash_with_options() -> None:
    encoder = load_encoder("hash", dim=32)
    assert encoder.space == "hash-32"
    assert set(known_encoders()) >= {"minilm", "minilm-onnx", "static", "hash"}


def test_registry_unknown_name_lists_known_ones() -> None:
    with pytest.raises(
        EncoderError, match=r"unknown encoder 'nope'; known encoders: minilm, minilm-onnx, static, hash"
    ):
        load_encoder("nope")


def test_registry_rejects_bad_options_clearly() -> None:
    with pytest.raises(EncoderError, match="rejected options"):
        load_encoder("hash", colour="blue")
