from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.harness import InProcessGateway, running_gateway


@pytest.fixture(scope="module")
def gw() -> Iterator[InProcessGateway]:
    """One in-process gateway per test module (hypothesis examples share it)."""
    with running_gateway() as gateway:
        yield gateway
