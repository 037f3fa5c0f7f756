"""The in-process limiter: one gateway process, exact, with no store to be down.

The check and the update of every limit happen under one lock with no ``await`` between them,
so concurrent calls (coroutines on the event loop, or threads) are decided one at a time:
exactly as many get through as the limits allow. The rules (token buckets, budget counters per
UTC period, the 429s and headers) are :mod:`.limit_rules`'.

**A restart does not forget the budget.** Counters live in memory, so the first call of a key
in a period asks ``spent_since(key_id, period_start_ms)`` for what the key already spent (the
gateway's own spans in the tracing store, :func:`.limits_store.store_spend`) and counts on from
there. Should that lookup fail, the call gets the ``on_store_down`` policy (a 503, or through
marked ``fail-open``) and the next call asks again. Rate buckets start full after a restart: a
minute's worth, which is what the limit allows anyway.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from opsloop.errors import OpsloopError
from opsloop.llm.gateway.limit_rules import OnStoreDown
from opsloop.llm.gateway.limit_rules import fits_at_all
from opsloop.llm.gateway.limit_rules import is_limited
from opsloop.llm.gateway.limit_rules import limit_headers
from opsloop.llm.gateway.limit_rules import period_of
from opsloop.llm.gateway.limit_rules import refused
from opsloop.llm.gateway.limit_rules import store_down
from opsloop.llm.gateway.limit_rules import to_nano
from opsloop.llm.gateway.ports import Caller
from opsloop.llm.gateway.ports import Reservation

__all__ = ["MemoryLimiter", "SpentSince"]

SpentSince = Callable[[str, int], Awaitable[float]]  # (key_id, since epoch ms) -> USD spent
_MAX_OPEN = 65_536  # reservations never settled (a crashed call) are dropped past this many
_OPEN_MAX_AGE_S = 3600.0


@dataclass(slots=True)
class _Bucket:
    level: float
    at: float  # when ``level`` was measured (clock seconds)

    def refill(self, capacity: int, now: float) -> float:
        """The level at ``now``: refilled at ``capacity`` a minute, never above it."""
        level = self.level + max(0.0, now - self.at) * capacity / 60.0
        self.level, self.at = min(level, float(capacity)), now
        return self.level


def _bucket(buckets: dict[str, _Bucket], key_id: str, capacity: int, now: float) -> _Bucket:
    """The key's bucket: a full one for a key seen for the first time (built only then, not
    on every call as ``setdefault``'s argument would be)."""
    found = buckets.get(key_id)
    if found is None:
        found = buckets[key_id] = _Bucket(capacity, now)
    return found


class _Open(NamedTuple):  # a tuple: built on every call, cheaper than a frozen dataclass
    key_id: str
    budget_slot: tuple[str, str] | None  # (key id, period id) the estimate was counted in
    tokens: int
    cost_nano: int
    tpm: int | None
    at: float


class MemoryLimiter:
    """Requests, tokens and spend per key in this process (see the module docstring).

    Args:
        clock: Seconds since the epoch (tests move it across a day or a month).
        spent_since: What a key spent since a time, to seed its budget after a restart.
        on_store_down: What a call gets when ``spent_since`` fails.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        spent_since: SpentSince | None = None,
        on_store_down: OnStoreDown = "closed",
    ) -> None:
        self._clock = clock
        self._spent_since = spent_since
        self._on_store_down = on_store_down
        self._lock = threading.Lock()
        self._requests: dict[str, _Bucket] = {}
        self._tokens: dict[str, _Bucket] = {}
        self._spent: dict[tuple[str, str], int] = {}  # (key id, period id) -> nano-dollars
        self._open: dict[str, _Open] = {}
        self._seeding: dict[tuple[str, str], asyncio.Task[float]] = {}
        self._ids = itertools.count(1)  # reservation handles: unique within this limiter

    async def reserve(self, caller: Caller, *, tokens: int, cost_usd: float) -> Reservation:
        """Count one request, ``tokens`` and ``cost_usd`` against ``caller``'s key, or raise
        ``RateLimited`` (nothing counted) when a limit would be passed."""
        if not is_limited(caller):
            return Reservation(caller.key_id, tokens, cost_usd)
        limits, key_id = caller.limits, caller.key_id
        slot = None
        if limits.budget_usd is not None:
            period = period_of(limits.budget_period, self._clock())
            slot = (key_id, period.id)
            if slot not in self._spent and self._spent_since is not None:
                try:
                    await self._seed(slot, int(period.start_s * 1000))
                except OpsloopError as exc:
                    return store_down(self._on_store_down, caller, tokens, cost_usd, exc.message)
        return self._take(caller, slot, max(0, tokens), cost_usd)

    def _take(
        self, caller: Caller, slot: tuple[str, str] | None, tokens: int, cost_usd: float
    ) -> Reservation:
        limits, key_id, nano = caller.limits, caller.key_id, to_nano(cost_usd)
        now = self._clock()
        fits_at_all(limits, tokens, nano, now)
        with self._lock:
            waits: list[tuple[float, str]] = []
            requests_left = tokens_left = 0.0
            if limits.rpm is not None:
                bucket = _bucket(self._requests, key_id, limits.rpm, now)
                requests_left = bucket.refill(limits.rpm, now)
                if requests_left < 1:
                    waits.append(((1 - requests_left) * 60 / limits.rpm, "rpm"))
            if limits.tpm is not None:
                bucket = _bucket(self._tokens, key_id, limits.tpm, now)
                tokens_left = bucket.refill(limits.tpm, now)
                if tokens_left < tokens:
                    waits.append(((tokens - tokens_left) * 60 / limits.tpm, "tpm"))
            budget_left = 0
            if slot is not None and limits.budget_usd is not None:
                if slot not in self._spent:  # a new period (or no seed): start from zero
                    self._forget_periods(key_id)
                spent, budget = self._spent.setdefault(slot, 0), to_nano(limits.budget_usd)
                if spent >= budget or spent + nano > budget:
                    end = period_of(limits.budget_period, now).end_s
                    waits.append((end - now, "budget"))
                budget_left = budget - spent - nano
            if waits:
                wait_s, which = max(waits)
                raise refused(limits, which, wait_s, now)
            if limits.rpm is not None:
                self._requests[key_id].level -= 1
                requests_left -= 1
            if limits.tpm is not None:
                self._tokens[key_id].level -= tokens
                tokens_left -= tokens
            if slot is not None:
                self._spent[slot] += nano
            token = f"{next(self._ids):x}"
            if len(self._open) >= _MAX_OPEN:
                self._drop_stale(now)
            self._open[token] = _Open(key_id, slot, tokens, nano, limits.tpm, now)
        headers = limit_headers(limits, requests_left, tokens_left, budget_left)
        return Reservation(key_id, tokens, cost_usd, token=token, headers=headers)

    async def settle(self, reservation: Reservation, *, tokens: int, cost_usd: float) -> None:
        """Replace the reservation's estimate with what the call used; a second settle of the
        same reservation (or one that counted nothing) changes nothing."""
        self.settle_now(reservation, tokens=tokens, cost_usd=cost_usd)

    def settle_now(self, reservation: Reservation, *, tokens: int, cost_usd: float) -> None:
        """:meth:`settle`, which never waits: the proxy calls this one as a call ends, rather
        than starting a task a request to run the coroutine."""
        if not reservation.token:
            return
        with self._lock:
            found = self._open.pop(reservation.token, None)
            if found is None:
                return
            if found.tpm is not None and found.key_id in self._tokens:
                bucket = self._tokens[found.key_id]
                bucket.refill(found.tpm, self._clock())
                bucket.level = min(bucket.level + found.tokens - max(0, tokens), float(found.tpm))
            if found.budget_slot is not None and found.budget_slot in self._spent:
                self._spent[found.budget_slot] += to_nano(cost_usd) - found.cost_nano

    async def _seed(self, slot: tuple[str, str], since_ms: int) -> None:
        """Ask once (per key and period, however many calls wait) what was already spent."""
        assert self._spent_since is not None
        task = self._seeding.get(slot)
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.ensure_future(self._spent_since(slot[0], since_ms))
            self._seeding[slot] = task
        try:
            spent = await asyncio.shield(task)
        finally:
            if task.done():
                self._seeding.pop(slot, None)
        with self._lock:
            if slot not in self._spent:
                self._forget_periods(slot[0])
                self._spent[slot] = to_nano(spent)

    def _forget_periods(self, key_id: str) -> None:
        """Drop ``key_id``'s counters of earlier periods (their open calls settle into
        nothing: that period is over). Called under the lock."""
        for old in [s for s in self._spent if s[0] == key_id]:
            del self._spent[old]

    def _drop_stale(self, now: float) -> None:
        """Forget reservations older than an hour that were never settled; their estimate
        stays counted (the safe side). Called under the lock."""
        for token in [t for t, o in self._open.items() if now - o.at > _OPEN_MAX_AGE_S]:
            del self._open[token]
