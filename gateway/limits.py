"""Per-key limits and budgets, and the admission step around the routing decision.

    authenticate (gateway.auth)
      -> admit_request      requests per minute, before the pipeline decides
      -> decide             (gateway.pipeline)
      -> admit              allowed routes, prompt tokens per minute, spend budget (downgrade or reject)
      -> forward
      -> settle             completion tokens and the request's cost, charged when it has finished

Every limit is a fixed-window counter (minute, hour or day, aligned to the epoch, so days are UTC
days). A check is one atomic step over all of a request's counters: each counter reports whether
``used + amount <= limit``; if every *blocking* counter allows, all amounts are added, otherwise
nothing is. Budgets are checked with amount 0 (refused once ``used >= limit``) and charged after
the answer, so the last request of a window may overshoot by its own cost.

Counters live in a ``CounterStore``: ``MemoryStore`` (one process) or ``RedisStore``
(gateway.limits_redis, shared by replicas). When the store cannot be reached the limiter fails
open or closed as configured, counting each miss in ``gateway_limiter_store_errors_total``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from gateway.auth import ApiKey, Budget, KeyRing, Role, authenticate, check_routes, load_ring
from gateway.cost import cost_usd
from gateway.errors import Forbidden, GatewayError, NotReady, RateLimited
from gateway.metrics import GatewayMetrics
from gateway.runtime import BackendTarget, Runtime
from gateway.settings import Settings
from gateway.types import ChatRequest, Decision, Reason, Usage

Kind = Literal["requests", "tokens", "budget"]
MINUTE_S = 60
NANO = 1e9  # budgets are counted in nano-USD so that every store adds integers
_PER = {60: "minute", 3600: "hour", 86_400: "day"}

log = logging.getLogger("gateway.access")


@dataclass(frozen=True, slots=True)
class Meter:
    """One fixed-window counter to check, and to add ``amount`` to if the check passes."""

    key_id: str
    kind: Kind
    window_s: int
    limit: int
    amount: int
    blocking: bool = True

    @property
    def name(self) -> str:
        # The braces are a Redis hash tag: all counters of one key share a slot.
        return f"gw:rl:{{{self.key_id}}}:{self.kind}:{self.window_s}"


@dataclass(frozen=True, slots=True)
class Charge:
    """An amount added after the fact (completion tokens, cost), whatever the limit."""

    key_id: str
    kind: Kind
    window_s: int
    amount: int

    @property
    def name(self) -> str:
        return f"gw:rl:{{{self.key_id}}}:{self.kind}:{self.window_s}"


@dataclass(frozen=True, slots=True)
class Reading:
    allowed: bool
    used: int  # before this request
    reset_s: float  # until the window ends


def allows(used: int, amount: int, limit: int) -> bool:
    return used + amount <= limit if amount > 0 else used < limit


class StoreUnavailable(Exception):
    """The counter store could not be reached in time."""


class CounterStore(Protocol):
    async def check(self, meters: Sequence[Meter]) -> tuple[Reading, ...]:
        """Atomically read every meter; add the amounts if every blocking meter allows."""
        ...

    def charge(self, charges: Sequence[Charge]) -> None:
        """Add amounts without waiting (a shared store sends them in the background)."""
        ...

    async def aclose(self) -> None: ...


class MemoryStore:
    """Counters in this process: exact, but each gateway process (worker, replica) counts alone."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counts: dict[str, tuple[int, int]] = {}  # name -> (window index, used); one entry per counter

    def _used(self, name: str, window_s: int, now: float) -> tuple[int, int]:
        window = int(now // window_s)
        entry = self._counts.get(name)
        return window, entry[1] if entry is not None and entry[0] == window else 0

    async def check(self, meters: Sequence[Meter]) -> tuple[Reading, ...]:
        now = self._clock()
        readings: list[Reading] = []
        passed = True
        for meter in meters:
            window, used = self._used(meter.name, meter.window_s, now)
            ok = allows(used, meter.amount, meter.limit)
            readings.append(Reading(ok, used, (window + 1) * meter.window_s - now))
            passed = passed and (ok or not meter.blocking)
        if passed:
            for meter, reading in zip(meters, readings, strict=True):
                if meter.amount:
                    self._counts[meter.name] = (int(now // meter.window_s), reading.used + meter.amount)
        return tuple(readings)

    def charge(self, charges: Sequence[Charge]) -> None:
        now = self._clock()
        for item in charges:
            window, used = self._used(item.name, item.window_s, now)
            self._counts[item.name] = (window, used + item.amount)

    async def aclose(self) -> None:
        return None


def _retry_after(reading: Reading) -> dict[str, str]:
    return {"retry-after": str(max(1, math.ceil(reading.reset_s)))}


def _per(window_s: int) -> str:
    return _PER.get(window_s, f"{window_s} s")


class AccessControl:
    """The key ring and the limiter. The ring is one reference, swapped whole on reload."""

    def __init__(
        self,
        ring: KeyRing,
        store: CounterStore,
        *,
        fail_open: bool = True,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.ring = ring
        self.store = store
        self.fail_open = fail_open
        self.metrics = metrics
        self.reload_lock = asyncio.Lock()  # one admin reload or rollback at a time

    # ---------------------------------------------------------------- who

    def authenticate(self, headers: Mapping[str, str], role: Role = "user") -> ApiKey | None:
        """The request's key; ``None`` when no user keys are configured (authentication off)."""
        ring = self.ring
        if role == "user" and not ring.has_user_keys:
            return None
        if role == "admin" and not ring.has_admin_keys:
            raise Forbidden(
                "the admin endpoints are disabled: no admin key is configured "
                "(GATEWAY_ADMIN_KEY_SHA256, or a key with role admin in the keys file)",
                code="admin_disabled",
            )
        try:
            return authenticate(ring, headers, role)
        except GatewayError as exc:
            if self.metrics is not None and exc.status == 401:
                self.metrics.auth_failures.inc()
            raise

    # ---------------------------------------------------------------- limits

    async def admit_request(self, key: ApiKey) -> None:
        """Requests per minute, counted before any routing work is spent on the request."""
        limits = key.limits
        if limits is None or limits.requests_per_min is None:
            return
        meter = Meter(key.id, "requests", MINUTE_S, limits.requests_per_min, 1)
        (reading,) = await self._check((meter,))
        if not reading.allowed:
            self._count("requests")
            raise RateLimited(
                f"key {key.id!r} reached its limit of {meter.limit} requests per minute; "
                f"retry after {max(1, math.ceil(reading.reset_s))} s",
                headers=_retry_after(reading),
            )

    async def admit(self, key: ApiKey, chat: ChatRequest, decision: Decision, runtime: Runtime) -> Decision:
        """Allowed routes, then prompt tokens per minute and the spend budget, in one store step."""
        if key.allowed_routes is not None and decision.route not in key.allowed_routes:
            decision = _within_allowed(key, chat, decision, runtime)
        limits = key.limits
        if limits is None:
            return decision
        meters: list[Meter] = []
        if limits.tokens_per_min is not None:
            meters.append(Meter(key.id, "tokens", MINUTE_S, limits.tokens_per_min, decision.prompt_tokens))
        budget = limits.budget
        cheaper: Decision | None = None
        if budget is not None:
            cheaper = _downgrade(budget, chat, decision, runtime)
            # Over budget: a downgrade lets the request through, so the budget blocks only when
            # the action is reject or the cheaper route cannot serve this request.
            blocking = budget.reject or cheaper is None
            meters.append(Meter(key.id, "budget", budget.window_s, budget.nano_usd, 0, blocking))
        if not meters:
            return decision
        readings = await self._check(meters)
        for meter, reading in zip(meters, readings, strict=True):
            if reading.allowed:
                continue
            if meter.kind == "tokens":
                self._count("tokens")
                raise RateLimited(_tokens_message(key, meter, reading), headers=_retry_after(reading))
            assert budget is not None
            self._count("budget")
            if meter.blocking or cheaper is None:
                raise RateLimited(
                    _budget_message(key, budget, reading, cheaper is None and not budget.reject),
                    code="budget_exceeded",
                    headers=_retry_after(reading),
                )
            decision = cheaper
        return decision

    def settle(self, key: ApiKey, usage: Usage, target: BackendTarget | None) -> None:
        """Charge what the answer used: completion tokens (prompt tokens were charged at admission)
        and the request's cost against the budget."""
        limits = key.limits
        if limits is None:
            return
        charges: list[Charge] = []
        if limits.tokens_per_min is not None and usage.completion_tokens > 0:
            charges.append(Charge(key.id, "tokens", MINUTE_S, usage.completion_tokens))
        if limits.budget is not None and target is not None:
            nano = round(cost_usd(target, usage) * NANO)
            if nano > 0:
                charges.append(Charge(key.id, "budget", limits.budget.window_s, nano))
        if charges:
            self.store.charge(charges)

    async def aclose(self) -> None:
        await self.store.aclose()

    async def _check(self, meters: Sequence[Meter]) -> tuple[Reading, ...]:
        try:
            return await self.store.check(meters)
        except StoreUnavailable:
            self.store_error()
            if self.fail_open:
                return tuple(Reading(True, 0, 0.0) for _ in meters)
            raise NotReady(
                "rate limits cannot be checked right now (the limiter store is unreachable); retry shortly",
                code="limiter_unavailable",
                headers={"retry-after": "1"},
            ) from None

    def store_error(self) -> None:
        if self.metrics is not None:
            self.metrics.limiter_store_errors.inc()

    def _count(self, limit: Kind) -> None:
        if self.metrics is not None:
            self.metrics.rate_limited.labels(limit).inc()


def _needed(chat: ChatRequest, decision: Decision, runtime: Runtime) -> int:
    reserve = chat.max_output_tokens
    return decision.prompt_tokens + (reserve if reserve is not None else runtime.output_reserve_tokens)


def _serving(route: str, need: int, runtime: Runtime) -> tuple[str, ...]:
    return tuple(b for b in runtime.routes.get(route, ()) if runtime.fits(b, need))


def _within_allowed(key: ApiKey, chat: ChatRequest, decision: Decision, runtime: Runtime) -> Decision:
    """An explicit choice (pinned model, override header) of a route the key may not use is refused;
    an automatic one moves to the first of the key's routes that can serve the request."""
    allowed = key.allowed_routes or ()
    listed = ", ".join(allowed)
    if decision.reason in (Reason.PINNED, Reason.OVERRIDE):
        raise Forbidden(
            f"key {key.id!r} may not use route {decision.route!r} (allowed: {listed})",
            code="route_not_allowed",
        )
    need = _needed(chat, decision, runtime)
    for route in allowed:
        backends = _serving(route, need, runtime)
        if backends:
            return dataclasses.replace(
                decision,
                route=route,
                backends=backends,
                reason=Reason.ALLOWED_ROUTES,
                explanation=(
                    f"{decision.explanation}; key {key.id!r} may not use {decision.route!r}, "
                    f"so moved to {route!r}"
                ),
            )
    raise Forbidden(
        f"key {key.id!r} may not use route {decision.route!r}, and none of its routes ({listed}) "
        f"can serve this request ({need} tokens)",
        code="route_not_allowed",
    )


def _downgrade(budget: Budget, chat: ChatRequest, decision: Decision, runtime: Runtime) -> Decision | None:
    """The decision to use once the budget is spent, or ``None`` when there is no cheaper way."""
    route = budget.downgrade_route
    if route is None:
        return None
    if route == decision.route:
        return decision
    backends = _serving(route, _needed(chat, decision, runtime), runtime)
    if not backends:
        return None
    return Decision(
        route=route,
        backends=backends,
        reason=Reason.BUDGET,
        explanation=f"{decision.explanation}; the key's spend budget is used up, so downgraded to {route!r}",
        confidence=decision.confidence,
        probabilities=decision.probabilities,
        prompt_tokens=decision.prompt_tokens,
        timings=decision.timings,
    )


def _tokens_message(key: ApiKey, meter: Meter, reading: Reading) -> str:
    if meter.amount > meter.limit:
        return (
            f"this request's {meter.amount} prompt tokens exceed key {key.id!r}'s limit of "
            f"{meter.limit} tokens per minute"
        )
    return (
        f"key {key.id!r} reached its limit of {meter.limit} tokens per minute ({reading.used} used, "
        f"this request needs {meter.amount}); retry after {max(1, math.ceil(reading.reset_s))} s"
    )


def _budget_message(key: ApiKey, budget: Budget, reading: Reading, no_downgrade: bool) -> str:
    why = (
        f"; its downgrade route {budget.downgrade_route!r} cannot serve this request" if no_downgrade else ""
    )
    return (
        f"key {key.id!r} has spent its budget of ${budget.nano_usd / NANO:.2f} per "
        f"{_per(budget.window_s)}{why}; it resets in {max(1, math.ceil(reading.reset_s))} s"
    )


async def open_access(
    settings: Settings, metrics: GatewayMetrics | None, routes: Collection[str]
) -> AccessControl | None:
    """Build access control from the settings; ``None`` when no key of any kind is configured."""
    ring = load_ring(settings.keys_file, settings.api_keys, settings.admin_key_sha256)
    check_routes(ring, routes, settings.keys_file)
    if not ring.has_user_keys:
        log.warning(
            "no API keys configured: authentication is OFF and anyone who can reach this port can use "
            "the gateway (set GATEWAY_KEYS_FILE or GATEWAY_API_KEYS; see docs/access-control.md)"
        )
    if not ring.keys:
        return None
    store: CounterStore
    if settings.redis_url is not None:
        from gateway.limits_redis import RedisStore

        on_error = metrics.limiter_store_errors.inc if metrics is not None else None
        redis_store = RedisStore(settings.redis_url.get_secret_value(), on_error=on_error)
        if not await redis_store.ping():
            log.warning(
                "the limiter store (Redis) does not answer; limits fail %s until it does",
                settings.limiter_fail_mode,
            )
        store = redis_store
    else:
        store = MemoryStore()
        if ring.limited and settings.workers > 1:
            log.warning(
                "limits are counted per process: with %d workers a key gets up to %d times its limits; "
                "set GATEWAY_REDIS_URL to share them",
                settings.workers,
                settings.workers,
            )
    return AccessControl(ring, store, fail_open=settings.limiter_fail_mode == "open", metrics=metrics)
