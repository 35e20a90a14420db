"""Encoder registry: ``load_encoder(name, **options)`` builds an encoder by its registry name.

Each entry points at a module and a factory in it, ``"module:function"``; the module is imported
only when that encoder is asked for, so importing this package pulls in neither torch nor
onnxruntime. A factory takes keyword options and returns an object satisfying
:class:`classifiers.encoders.base.Encoder`.

=============  =========================================  ==========================================
name           factory                                    notes
=============  =========================================  ==========================================
``minilm``     ``classifiers.encoders.sentence:load``     reference: sentence-transformers + torch
``minilm-onnx`` ``classifiers.encoders.onnx:load``        same vector space as ``minilm``, no torch
``static``     ``classifiers.encoders.static:load``       static embeddings distilled from MiniLM
``hash``       ``classifiers.encoders.hashing:load``      deterministic, dependency-free; for tests
=============  =========================================  ==========================================
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from classifiers.encoders.base import Encoder, Vectors
from classifiers.errors import EncoderError

__all__ = ["ENCODERS", "Encoder", "EncoderError", "Vectors", "known_encoders", "load_encoder"]

ENCODERS: Mapping[str, str] = MappingProxyType(
    {
        "minilm": "classifiers.encoders.sentence:load",
        "minilm-onnx": "classifiers.encoders.onnx:load",
        "static": "classifiers.encoders.static:load",
        "hash": "classifiers.encoders.hashing:load",
    }
)


def known_encoders() -> tuple[str, ...]:
    return tuple(ENCODERS)


def load_encoder(name: str, **options: Any) -> Encoder:
    """Build the encoder registered as ``name``; options go to its factory unchanged.

    Raises :class:`EncoderError` for an unknown name, a module that cannot be imported here
    (a missing optional dependency), or a factory that rejects the options.
    """
    target = ENCODERS.get(name)
    if target is None:
        raise EncoderError(f"unknown encoder {name!r}; known encoders: {', '.join(ENCODERS)}")
    factory = _resolve(name, target)
    try:
        encoder = factory(**options)
    except TypeError as exc:
        raise EncoderError(f"encoder {name!r} rejected options {sorted(options)}: {exc}") from exc
    if not isinstance(encoder, Encoder):
        raise EncoderError(f"{target} returned {type(encoder).__name__}, which is not an Encoder")
    return encoder


def _resolve(name: str, target: str) -> Callable[..., object]:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EncoderError(f"encoder {name!r} is not available here ({module_name}: {exc})") from exc
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise EncoderError(f"encoder {name!r}: {module_name} defines no factory {attribute}(**options)")
    return factory  # type: ignore[no-any-return]
