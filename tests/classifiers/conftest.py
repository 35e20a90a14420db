from __future__ import annotations

import pytest

from classifiers.data import Example
from classifiers.encoders.hashing import HashingEncoder
from tests.classifiers.synthetic import make_examples


@pytest.fixture
def examples() -> list[Example]:
    return make_examples()


@pytest.fixture
def encoder() -> HashingEncoder:
    return HashingEncoder(256)
