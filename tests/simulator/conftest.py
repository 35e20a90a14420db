from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.simulator import RunningSimulator, SimulatorSettings, start_simulator
from gateway.simulator.answers import Encoding, load_encoding


@pytest.fixture(scope="session")
def encoding() -> Encoding:
    return load_encoding()


@pytest.fixture
def settings() -> SimulatorSettings:
    """Instant answers by default; tests that need timing pass their own settings."""
    return SimulatorSettings(ttft_ms=0, tokens_per_second=0, max_tokens_default=24)


@pytest.fixture
async def sim(settings: SimulatorSettings, encoding: Encoding) -> AsyncIterator[RunningSimulator]:
    running = await start_simulator(settings, "127.0.0.1", 0, encoding=encoding)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def client(sim: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=10) as c:
        yield c
