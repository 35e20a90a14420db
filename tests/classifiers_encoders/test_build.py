from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from classifiers import build_encoders
from classifiers.build_encoders import BuildError, _clean_static_output, _run, main, onnx_is_built


def _fake_complete(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_text("{}")


def test_complete_folders_are_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fake_complete(
        tmp_path / "minilm-onnx", ["model.onnx", "model_int8.onnx", "tokenizer.json", "build.json"]
    )
    _fake_complete(
        tmp_path / "static-minilm-256", ["model.safetensors", "tokenizer.json", "config.json", "build.json"]
    )
    assert main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "minilm-onnx: already built" in out
    assert "static: already built" in out


def test_a_partial_folder_is_not_complete(tmp_path: Path) -> None:
    _fake_complete(tmp_path / "minilm-onnx", ["model.onnx", "tokenizer.json"])
    assert not onnx_is_built(tmp_path / "minilm-onnx")


def test_a_failing_step_is_one_clear_error() -> None:
    with pytest.raises(BuildError, match=r"could not do the thing \(exit 3\):\nboom"):
        _run([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], "do the thing")


def test_unwritable_output_is_reported_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["--onnx", "--out", str(blocker / "sub")]) == 1
    assert "build_encoders: error: cannot write to" in capsys.readouterr().err


def test_static_output_loses_the_absolute_source_path(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"tokenizer_name": "/abs/site-packages/model", "hidden_dim": 256})
    )
    (tmp_path / "README.md").write_text("hub model card")
    _clean_static_output(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config == {"tokenizer_name": "sentence-transformers/all-MiniLM-L6-v2", "hidden_dim": 256}
    assert not (tmp_path / "README.md").exists()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_onnx_build_from_scratch_then_skip(tmp_path: Path) -> None:
    folder = tmp_path / "minilm-onnx"
    first = build_encoders.build_onnx(folder, progress=lambda _: None)
    assert first.built and onnx_is_built(folder)
    recipe = json.loads((folder / "build.json").read_text())
    assert recipe["cosine_vs_torch"]["fp32"]["min"] >= 0.99
    assert recipe["default_variant"] in {"fp32", "int8"}
    assert "site-packages" not in (folder / "build.json").read_text()
    assert not list(tmp_path.glob(".*partial"))
    second = build_encoders.build_onnx(folder, progress=lambda _: None)
    assert not second.built
