"""Where the built encoder files live, and the error raised when they are not there.

The ONNX and static encoders are built once from the packaged MiniLM weights by
``python -m classifiers.build_encoders`` into one folder per encoder under the encoder root:

    $GATEWAY_ENCODER_DIR (default ~/.cache/routing-gateway/encoders)
     +-- minilm-onnx/         model.onnx, model_int8.onnx, tokenizer.json, build.json, NOTICE
     +-- static-minilm-256/   model.safetensors, tokenizer.json, config.json, build.json, NOTICE

Nothing here touches the file system until a function is called.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from classifiers.errors import EncoderError

ENV_VAR = "GATEWAY_ENCODER_DIR"
DEFAULT_ROOT = "~/.cache/routing-gateway/encoders"
ONNX_DIRNAME = "minilm-onnx"
STATIC_DIRNAME = "static-minilm-256"
BUILD_COMMAND = "python -m classifiers.build_encoders"


class EncoderFilesMissing(EncoderError):
    """A built encoder's folder or one of its files is absent: the build command has not run."""


def encoder_root(environ: Mapping[str, str] | None = None) -> Path:
    """The folder holding every built encoder: ``$GATEWAY_ENCODER_DIR`` or the user cache."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_VAR, "").strip()
    return Path(value or DEFAULT_ROOT).expanduser()


def onnx_dir(root: Path | None = None) -> Path:
    return (encoder_root() if root is None else root) / ONNX_DIRNAME


def static_dir(root: Path | None = None) -> Path:
    return (encoder_root() if root is None else root) / STATIC_DIRNAME


def require_files(model_dir: Path, names: Iterable[str], *, encoder: str, flag: str) -> None:
    """Raise :class:`EncoderFilesMissing` naming the build command if any file is absent."""
    missing = [name for name in names if not (model_dir / name).is_file()]
    if not missing:
        return
    out = "" if model_dir.parent == encoder_root() else f" --out {model_dir.parent}"
    raise EncoderFilesMissing(
        f"the {encoder} encoder files are not built: {', '.join(missing)} missing in {model_dir}. "
        f"Build them with `{BUILD_COMMAND} {flag}{out}` "
        f"(or point {ENV_VAR} at a folder that holds them)"
    )
