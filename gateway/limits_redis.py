"""Counters in Redis, shared by every gateway process and replica.

A check is one Lua script: it reads the clock from Redis (``TIME``, so replicas with skewed clocks
agree on the window), reads every counter of the request's current windows, and adds the amounts
only if every blocking counter allows: one round trip, atomic, no lost updates between replicas.
Counters expire a second after their window ends. Charges after an answer are a second script,
sent in the background.

Fixed windows were chosen over sliding ones: one integer per key and window (a sliding log is a
sorted set entry per request), exact counts that are easy to reason about and to test, and budget
windows that match calendar days (UTC). The cost is that a client can burst up to twice a
per-minute limit across a window boundary.

Redis is never waited on for long: connect and read timeouts are short, there are no retries,
and after a failure the store is not tried again for ``cooldown_s``, so an outage costs each
request at most one fast failure rather than a timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.limits import Charge, Meter, Reading, StoreUnavailable

# KEYS[i]: counter name without the window; ARGV[4i-3..4i]: amount, limit, window_s, blocking
_CHECK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local names, ttls, out = {}, {}, {}
local pass = true
for i = 1, #KEYS do
  local amount = tonumber(ARGV[4 * i - 3])
  local limit = tonumber(ARGV[4 * i - 2])
  local w = tonumber(ARGV[4 * i - 1])
  local win = math.floor(now / w)
  local left = (win + 1) * w - now
  names[i] = KEYS[i] .. ':' .. win
  ttls[i] = math.ceil(left) + 1
  local used = tonumber(redis.call('GET', names[i]) or '0')
  local ok
  if amount > 0 then ok = used + amount <= limit else ok = used < limit end
  if ARGV[4 * i] == '1' and not ok then pass = false end
  out[3 * i - 2] = ok and 1 or 0
  out[3 * i - 1] = used
  out[3 * i] = math.ceil(left * 1000)
end
if pass then
  for i = 1, #KEYS do
    if tonumber(ARGV[4 * i - 3]) > 0 then
      redis.call('INCRBY', names[i], ARGV[4 * i - 3])
      redis.call('EXPIRE', names[i], ttls[i])
    end
  end
end
return out
"""

# KEYS[i]: counter name without the window; ARGV[2i-1..2i]: amount, window_s
_CHARGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for i = 1, #KEYS do
  local w = tonumber(ARGV[2 * i])
  local win = math.floor(now / w)
  local name = KEYS[i] .. ':' .. win
  redis.call('INCRBY', name, ARGV[2 * i - 1])
  redis.call('EXPIRE', name, math.ceil((win + 1) * w - now) + 1)
end
return #KEYS
"""

# Everything talking to Redis can raise: its own tree, sockets, and our deadline.
_STORE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


class RedisStore:
    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 0.25,
        cooldown_s: float = 1.0,
        on_error: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            max_connections=256,
        )
        self._check = self._redis.register_script(_CHECK)
        self._charge = self._redis.register_script(_CHARGE)
        self._deadline_s = timeout_s * 2
        self._cooldown_s = cooldown_s
        self._on_error = on_error
        self._clock = clock
        self._down_until = 0.0
        self._pending: set[asyncio.Task[None]] = set()

    async def check(self, meters: Sequence[Meter]) -> tuple[Reading, ...]:
        keys = [m.name for m in meters]
        args: list[int | str] = []
        for m in meters:
            args += [m.amount, m.limit, m.window_s, "1" if m.blocking else "0"]
        self._guard()
        try:
            async with asyncio.timeout(self._deadline_s):
                raw = await self._check(keys=keys, args=args)
        except _STORE_ERRORS as exc:
            self._down_until = self._clock() + self._cooldown_s
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from None
        values = [int(v) for v in raw]
        return tuple(
            Reading(bool(values[i]), values[i + 1], values[i + 2] / 1000) for i in range(0, len(values), 3)
        )

    def charge(self, charges: Sequence[Charge]) -> None:
        task = asyncio.get_running_loop().create_task(self._send_charges(tuple(charges)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for charges still being sent (tests, shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(self._deadline_s):
                return bool(await self._redis.ping())
        except _STORE_ERRORS:
            return False

    async def aclose(self) -> None:
        await self.drain()
        await self._redis.aclose()

    async def _send_charges(self, charges: tuple[Charge, ...]) -> None:
        keys = [c.name for c in charges]
        args: list[int] = []
        for c in charges:
            args += [c.amount, c.window_s]
        try:
            self._guard()
            async with asyncio.timeout(self._deadline_s):
                await self._charge(keys=keys, args=args)
        except (StoreUnavailable, RedisError, OSError, TimeoutError) as exc:
            # Nothing to refuse any more: the answer has been sent. The spend is lost to the count.
            if not isinstance(exc, StoreUnavailable):
                self._down_until = self._clock() + self._cooldown_s
            if self._on_error is not None:
                self._on_error()

    def _guard(self) -> None:
        if self._clock() < self._down_until:
            raise StoreUnavailable("redis: failed moments ago; not retried yet")
