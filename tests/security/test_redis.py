"""The Redis counter store against a real redis-server (started per session on a free port)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from gateway.limits import Charge, Meter, StoreUnavailable
from gateway.limits_redis import RedisStore
from tests.e2e.procs import free_port
from tests.security.conftest import FakeClock, RedisServer


def rpm(limit: int, key: str = "k") -> Meter:
    return Meter(key, "requests", 60, limit, 1)


async def test_counts_to_the_limit_and_refuses_without_counting(redis_url: str) -> None:
    store = RedisStore(redis_url)
    try:
        readings = [(await store.check([rpm(3)]))[0] for _ in range(5)]
        assert [r.allowed for r in readings] == [True, True, True, False, False]
        assert [r.used for r in readings] == [0, 1, 2, 3, 3]
        assert all(0 < r.reset_s <= 60 for r in readings)
    finally:
        await store.aclose()


async def test_counters_expire_with_their_window(redis_url: str, redis_server: RedisServer) -> None:
    store = RedisStore(redis_url)
    try:
        await store.check([rpm(3), Meter("k", "tokens", 60, 100, 40)])
        store.charge([Charge("k", "budget", 86_400, 123)])
        await store.drain()
        names = sorted(
            n.decode() if isinstance(n, bytes) else n for n in redis_server.client().keys("gw:rl:*")
        )
        assert [n.rsplit(":", 1)[0] for n in names] == [
            "gw:rl:{k}:budget:86400",
            "gw:rl:{k}:requests:60",
            "gw:rl:{k}:tokens:60",
        ]
        for name in names:
            ttl = redis_server.client().ttl(name)
            window = int(name.split(":")[-2])
            assert 0 < ttl <= window + 1
    finally:
        await store.aclose()


async def test_blocking_meters_decide_for_all(redis_url: str) -> None:
    store = RedisStore(redis_url)
    try:
        store.charge([Charge("k", "budget", 86_400, 10)])
        await store.drain()
        tokens = Meter("k", "tokens", 60, 100, 60)
        over = await store.check([tokens, Meter("k", "budget", 86_400, 10, 0)])
        assert [r.allowed for r in over] == [True, False]
        assert (await store.check([Meter("k", "tokens", 60, 100, 100)]))[0].allowed  # nothing was taken
        soft = await store.check([tokens, Meter("k", "budget", 86_400, 10, 0, blocking=False)])
        assert [r.allowed for r in soft] == [False, False]  # 100 tokens already taken above
        big = 10**15  # budgets are nano-USD: large integers must stay exact
        store.charge([Charge("big", "budget", 86_400, big)])
        await store.drain()
        reading = (await store.check([Meter("big", "budget", 86_400, big + 1, 0)]))[0]
        assert reading.allowed and reading.used == big
    finally:
        await store.aclose()


async def test_two_stores_racing_share_one_limit_exactly(redis_url: str) -> None:
    stores = [RedisStore(redis_url), RedisStore(redis_url)]
    try:
        results = await asyncio.gather(*(stores[i % 2].check([rpm(10, "race")]) for i in range(40)))
        assert sum(r[0].allowed for r in results) == 10
    finally:
        for store in stores:
            await store.aclose()


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port that accepts connections (into the backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


async def test_an_unanswering_redis_never_hangs(blackhole: int) -> None:
    errors: list[int] = []
    store = RedisStore(f"redis://127.0.0.1:{blackhole}/0", on_error=lambda: errors.append(1))
    try:
        started = time.perf_counter()
        with pytest.raises(StoreUnavailable):
            await store.check([rpm(1)])
        assert time.perf_counter() - started < 1.0
        # within the cooldown the store is not tried: the answer is immediate
        started = time.perf_counter()
        with pytest.raises(StoreUnavailable, match="not retried yet"):
            await store.check([rpm(1)])
        assert time.perf_counter() - started < 0.05
        store.charge([Charge("k", "tokens", 60, 5)])
        await store.drain()
        assert errors == [1]
        assert not await store.ping()
    finally:
        await store.aclose()


async def test_a_refused_connection_fails_fast_and_is_retried_after_the_cooldown() -> None:
    clock = FakeClock()
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", clock=clock, cooldown_s=1.0)
    try:
        with pytest.raises(StoreUnavailable, match="ConnectionError"):
            await store.check([rpm(1)])
        with pytest.raises(StoreUnavailable, match="not retried yet"):
            await store.check([rpm(1)])
        clock.advance(1.1)
        with pytest.raises(StoreUnavailable, match="ConnectionError"):
            await store.check([rpm(1)])
    finally:
        await store.aclose()
