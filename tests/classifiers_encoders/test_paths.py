from __future__ import annotations

from pathlib import Path

import pytest

from classifiers.encoders import EncoderError, load_encoder
from classifiers.encoders.paths import (
    ENV_VAR,
    EncoderFilesMissing,
    encoder_root,
    onnx_dir,
    require_files,
    static_dir,
)


def test_root_comes_from_the_environment_variable(tmp_path: Path) -> None:
    assert encoder_root({ENV_VAR: str(tmp_path)}) == tmp_path


def test_root_defaults_to_the_user_cache_not_the_source_tree() -> None:
    root = encoder_root({})
    assert root == Path.home() / ".cache" / "routing-gateway" / "encoders"
    assert encoder_root({ENV_VAR: "  "}) == root


def test_root_expands_the_home_folder() -> None:
    assert encoder_root({ENV_VAR: "~/enc"}) == Path.home() / "enc"


def test_each_encoder_has_its_own_folder(tmp_path: Path) -> None:
    assert onnx_dir(tmp_path) == tmp_path / "minilm-onnx"
    assert static_dir(tmp_path) == tmp_path / "static-minilm-256"


def test_missing_files_name_the_build_command(tmp_path: Path) -> None:
    (tmp_path / "present.txt").write_text("x")
    with pytest.raises(EncoderFilesMissing) as caught:
        require_files(tmp_path, ["present.txt", "model.onnx"], encoder="minilm-onnx", flag="--onnx")
    message = str(caught.value)
    assert "model.onnx" in message
    assert "present.txt" not in message
    assert f"python -m classifiers.build_encoders --onnx --out {tmp_path.parent}" in message
    assert isinstance(caught.value, EncoderError)


def test_nothing_raised_when_every_file_is_present(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    require_files(tmp_path, ["a"], encoder="static", flag="--static")


@pytest.mark.parametrize(("name", "flag"), [("minilm-onnx", "--onnx"), ("static", "--static")])
def test_registry_reports_unbuilt_encoders_clearly(tmp_path: Path, name: str, flag: str) -> None:
    with pytest.raises(EncoderError, match=rf"classifiers\.build_encoders {flag}"):
        load_encoder(name, model_dir=str(tmp_path / "nothing-here"))
