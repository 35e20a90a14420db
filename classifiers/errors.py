"""Errors raised for bad input: each carries one line a person can act on.

ClassifierError
 +-- DataError        a labelled-examples file is missing, malformed or unusable
 +-- EncoderError     an unknown encoder name, or one that cannot be loaded here
 +-- ArtefactError    an artefact is missing, corrupt, or was trained for another encoder
 +-- ClassifierClosed the batching front was used before ``start()`` or after ``aclose()``
"""

from __future__ import annotations


class ClassifierError(Exception):
    """Base of every error this package raises on purpose."""


class DataError(ClassifierError):
    pass


class EncoderError(ClassifierError):
    pass


class ArtefactError(ClassifierError):
    pass


class ClassifierClosed(ClassifierError):
    pass
