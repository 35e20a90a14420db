"""Circuit breakers: one per backend, consulted by the forwarder before each try.

    closed --(N failures in a row, or error ratio over the window)--> open
    open --(open_s elapsed)--> half-open: up to half_open_probes requests go through
    half-open --(a probe succeeds)--> closed;  --(a probe fails)--> open again

What counts as a failure is the forwarder's call (``BackendHealth.record``): a connect error or
timeout, a first-byte timeout, a 5xx, a 401/403/404, or a response broken before its first body
bytes. A 429 is not recorded at all: the backend is up and telling us to slow down, and the
fallback plus the client's Retry-After handle that. A probe slot whose outcome never arrives
(a 429, a client that went away) is given back after ``open_s``, so half-open cannot wedge.

Time comes from an injected monotonic clock. State changes are reported through ``on_change``
(the app sets the ``gateway_circuit_state`` gauge from it); nothing here touches metrics or HTTP.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.config import CircuitBreaker

Clock = Callable[[], float]
_BUCKETS = 20  # the sliding window is kept as this many time buckets


class CircuitState(enum.IntEnum):
    """Values are the gateway_circuit_state gauge's."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


StateListener = Callable[[str, CircuitState | None], None]  # None: the backend was removed


@dataclass(slots=True)
class _Window:
    """Outcomes over the last ``span_s`` seconds, in ``_BUCKETS`` buckets: [start, total, failed]."""

    span_s: float
    buckets: deque[list[float]] = field(default_factory=deque)

    def add(self, now: float, failed: bool) -> None:
        self._prune(now)
        width = self.span_s / _BUCKETS
        if not self.buckets or now - self.buckets[-1][0] >= width:
            self.buckets.append([now, 0, 0])
        bucket = self.buckets[-1]
        bucket[1] += 1
        bucket[2] += failed

    def counts(self, now: float) -> tuple[int, int]:
        self._prune(now)
        return int(sum(b[1] for b in self.buckets)), int(sum(b[2] for b in self.buckets))

    def clear(self) -> None:
        self.buckets.clear()

    def _prune(self, now: float) -> None:
        while self.buckets and now - self.buckets[0][0] > self.span_s:
            self.buckets.popleft()


@dataclass(slots=True)
class _Breaker:
    window: _Window
    state: CircuitState = CircuitState.CLOSED
    consecutive: int = 0
    opened_at: float = 0.0
    probes: list[float] = field(default_factory=list)  # start times of probes in flight
    opened_total: int = 0


class CircuitBreakers:
    """The ``BackendHealth`` the forwarder uses: ``allow`` before a try, ``record`` after it."""

    def __init__(
        self,
        settings: CircuitBreaker,
        backends: Iterable[str] = (),
        *,
        clock: Clock = time.monotonic,
        on_change: StateListener | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._on_change = on_change
        self._breakers: dict[str, _Breaker] = {}
        self.reconfigure(settings, backends)

    def reconfigure(self, settings: CircuitBreaker, backends: Iterable[str]) -> None:
        """On a policy reload: backends that still exist keep their state, new ones start closed."""
        wanted = list(backends)
        if settings.window_s != self.settings.window_s:
            for breaker in self._breakers.values():
                breaker.window = _Window(settings.window_s)
        self.settings = settings
        for name in [n for n in self._breakers if n not in wanted]:
            del self._breakers[name]
            self._notify(name, None)
        for name in wanted:
            if name not in self._breakers:
                self._breakers[name] = _Breaker(_Window(settings.window_s))
                self._notify(name, CircuitState.CLOSED)
            if not settings.enabled and self._breakers[name].state is not CircuitState.CLOSED:
                self._close(name, self._breakers[name])

    def allow(self, backend: str) -> bool:
        breaker = self._breakers.get(backend)
        if breaker is None or not self.settings.enabled:
            return True
        if breaker.state is CircuitState.CLOSED:
            return True
        now = self._clock()
        if breaker.state is CircuitState.OPEN:
            if now - breaker.opened_at < self.settings.open_s:
                return False
            breaker.state = CircuitState.HALF_OPEN
            breaker.probes = []
            self._notify(backend, CircuitState.HALF_OPEN)
        # half-open: a bounded number of probes; a probe that never reported is given back
        breaker.probes = [t for t in breaker.probes if now - t < self.settings.open_s]
        if len(breaker.probes) >= self.settings.half_open_probes:
            return False
        breaker.probes.append(now)
        return True

    def record(self, backend: str, ok: bool) -> None:
        breaker = self._breakers.get(backend)
        if breaker is None or not self.settings.enabled:
            return
        now = self._clock()
        if breaker.state is CircuitState.HALF_OPEN:
            if ok:
                self._close(backend, breaker)
            else:
                self._open(backend, breaker, now)
            return
        if breaker.state is CircuitState.OPEN:
            return  # a request let through before the circuit opened; it changes nothing
        breaker.window.add(now, failed=not ok)
        if ok:
            breaker.consecutive = 0
            return
        breaker.consecutive += 1
        total, failed = breaker.window.counts(now)
        s = self.settings
        if breaker.consecutive >= s.consecutive_failures or (
            total >= s.min_requests and failed / total >= s.error_ratio
        ):
            self._open(backend, breaker, now)

    def state(self, backend: str) -> CircuitState:
        """The state now: an open circuit whose cool-down has passed reports half-open."""
        breaker = self._breakers.get(backend)
        if breaker is None:
            return CircuitState.CLOSED
        if breaker.state is CircuitState.OPEN and self._clock() - breaker.opened_at >= self.settings.open_s:
            return CircuitState.HALF_OPEN
        return breaker.state

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per-backend state for /readyz."""
        now = self._clock()
        out: dict[str, dict[str, Any]] = {}
        for name, breaker in self._breakers.items():
            total, failed = breaker.window.counts(now)
            state = self.state(name)
            entry: dict[str, Any] = {
                "circuit": state.name.lower(),
                "consecutive_failures": breaker.consecutive,
                "window_requests": total,
                "window_failures": failed,
                "opened_total": breaker.opened_total,
            }
            if state is CircuitState.OPEN:
                entry["retry_in_s"] = round(self.settings.open_s - (now - breaker.opened_at), 3)
            out[name] = entry
        return out

    def _open(self, name: str, breaker: _Breaker, now: float) -> None:
        breaker.state = CircuitState.OPEN
        breaker.opened_at = now
        breaker.probes = []
        breaker.opened_total += 1
        self._notify(name, CircuitState.OPEN)

    def _close(self, name: str, breaker: _Breaker) -> None:
        breaker.state = CircuitState.CLOSED
        breaker.consecutive = 0
        breaker.probes = []
        breaker.window.clear()
        self._notify(name, CircuitState.CLOSED)

    def _notify(self, name: str, state: CircuitState | None) -> None:
        if self._on_change is not None:
            self._on_change(name, state)
