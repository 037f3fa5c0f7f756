"""What the limiters read from the metadata store: each key's limits, and what a key spent.

- :class:`KeyLimitsLookup` is the gateway's ``limits_for(key_id)``: the limits stored with the
  key (``opsloop keys limit``), kept :data:`CACHE_TTL_S` seconds like the authorizer keeps keys,
  so a request costs a dict look-up. An entry past its time is still answered while one
  background read refreshes it, so no request waits on the database once a key is known; a
  change is seen within about :data:`CACHE_TTL_S`.
- :func:`store_spend` is the limiters' ``spent_since``: the cost of the gateway's own spans for a
  key since a time, so a budget survives a restart. The gateway writes one span per call with
  the key's id in the ``opsloop.gateway.key_id`` attribute and the call's cost in the span's
  ``cost`` column (read from ``opsloop.cost`` / ``gen_ai.usage.cost``, see
  :mod:`opsloop.llm.tracing.semconv`). Spans are sent in the background, so calls made in the
  last moments before a restart may be missing: the count is as good as the trace store.

Both read in a worker thread: the store's sessions block, and the gateway's event loop must not.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable
from collections.abc import Callable

from sqlalchemy import func
from sqlalchemy import select

from opsloop.governance import services as governance
from opsloop.llm.gateway.ports import KeyLimits
from opsloop.llm.tracing.tables import SpanRow
from opsloop.store.database import Store

__all__ = ["CACHE_TTL_S", "KEY_ID_ATTRIBUTE", "KeyLimitsLookup", "store_spend"]

CACHE_TTL_S = 2.0
KEY_ID_ATTRIBUTE = "opsloop.gateway.key_id"
_MAX_CACHED = 10_000


class KeyLimitsLookup:
    """``await lookup(key_id)`` → the key's :class:`KeyLimits` (unlimited for an unknown key:
    whether a key may call at all is the auth check's business). Use from one event loop."""

    def __init__(
        self,
        store: Store,
        *,
        ttl_s: float = CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, KeyLimits]] = {}
        self._reading: dict[str, asyncio.Task[KeyLimits]] = {}

    async def __call__(self, key_id: str) -> KeyLimits:
        found = self._cache.get(key_id)
        if found is not None:
            if found[0] < self._clock() and key_id not in self._reading:
                self._read(key_id)  # answered from the cache meanwhile
            return found[1]
        return await asyncio.shield(self._reading.get(key_id) or self._read(key_id))

    def forget(self) -> None:
        """Drop every cached entry (after a change made through this process)."""
        self._cache.clear()

    def _read(self, key_id: str) -> asyncio.Task[KeyLimits]:
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self._query, key_id))
        self._reading[key_id] = task
        task.add_done_callback(lambda done: self._done(key_id, done))
        return task

    def _done(self, key_id: str, task: asyncio.Task[KeyLimits]) -> None:
        self._reading.pop(key_id, None)
        if task.cancelled() or task.exception() is not None:
            return  # a stale entry stays; the next call past its time reads again
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[key_id] = (self._clock() + self.ttl_s, task.result())

    def _query(self, key_id: str) -> KeyLimits:
        with self.store.read() as session:
            stored = governance.key_limits(session, key_id)
        if stored is None:
            return KeyLimits()
        return KeyLimits(rpm=stored.rpm, tpm=stored.tpm, budget_usd=stored.budget_usd,
                         budget_period=stored.budget_period or "month")  # fmt: skip


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def store_spend(store: Store) -> Callable[[str, int], Awaitable[float]]:
    """``await spent_since(key_id, since_ms)``: the summed cost (USD) of the gateway's spans of
    ``key_id`` that started at or after ``since_ms``; ``StoreError`` when the store fails."""

    def query(key_id: str, since_ms: int) -> float:
        # spans keep their attributes as JSON text written by json.dumps: '"name": "value"'
        needle = json.dumps({KEY_ID_ATTRIBUTE: key_id}, ensure_ascii=False)[1:-1]
        statement = select(func.coalesce(func.sum(SpanRow.cost), 0.0)).where(
            SpanRow.start_ns >= since_ms * 1_000_000,
            SpanRow.attributes.like(f"%{_like(needle)}%", escape="\\"),
        )
        with store.read() as session:  # a failure is the store's StoreError
            return float(session.scalar(statement) or 0.0)

    async def spent_since(key_id: str, since_ms: int) -> float:
        return await asyncio.to_thread(query, key_id, since_ms)

    return spent_since
