"""Fixtures for the built encoders: tests that need them skip, naming the build command."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifiers.build_encoders import onnx_is_built, static_is_built
from classifiers.encoders.paths import onnx_dir, static_dir

BUILD_HINT = "run `python -m classifiers.build_encoders` (or set GATEWAY_ENCODER_DIR) to test it"


@pytest.fixture(scope="session")
def built_onnx_dir() -> Path:
    folder = onnx_dir()
    if not onnx_is_built(folder):
        pytest.skip(f"the ONNX encoder is not built in {folder}: {BUILD_HINT}")
    return folder


@pytest.fixture(scope="session")
def built_static_dir() -> Path:
    folder = static_dir()
    if not static_is_built(folder):
        pytest.skip(f"the static encoder is not built in {folder}: {BUILD_HINT}")
    return folder
