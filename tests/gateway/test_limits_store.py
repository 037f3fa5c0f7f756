"""What the limiters read from the metadata store (SQLite and PostgreSQL): a key's limits,
cached for a couple of seconds, and what a key spent, summed from the gateway's spans, which is
what lets a restarted in-process limiter keep a budget."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime

import pytest

from opsloop.errors import RateLimited
from opsloop.governance import services
from opsloop.governance.entities import KeyCreate
from opsloop.governance.entities import UserCreate
from opsloop.governance.key_limits import KeyLimitsChange
from opsloop.kernel.identity import Principal
from opsloop.llm.gateway.limits import build_limiter
from opsloop.llm.gateway.limits_store import KEY_ID_ATTRIBUTE
from opsloop.llm.gateway.limits_store import KeyLimitsLookup
from opsloop.llm.gateway.limits_store import store_spend
from opsloop.llm.gateway.ports import Caller
from opsloop.llm.gateway.ports import KeyLimits
from opsloop.llm.tracing import services as tracing
from opsloop.llm.tracing.records import SpanRecord
from opsloop.schema import open_store
from opsloop.store.database import Store

ADMIN = Principal(name="root", role="admin", auth="users")
DAY = datetime(2026, 12, 8, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    with opened.write() as s:
        services.create_user(s, UserCreate(name="root", role="admin"), ADMIN)
    yield opened
    opened.dispose()


def new_key(store: Store, name: str = "gateway") -> str:
    with store.write() as s:
        return services.create_key(s, KeyCreate(name=name), ADMIN).key.id


def span(key_id: str | None, cost: float | None, at_s: float) -> SpanRecord:
    attrs = {"gen_ai.operation.name": "chat", "opsloop.gateway.route": "support"}
    if key_id is not None:
        attrs[KEY_ID_ATTRIBUTE] = key_id
    start = int(at_s * 1e9)
    return SpanRecord(trace_id=os.urandom(16).hex(), span_id=os.urandom(8).hex(),
                      name="chat support", start_ns=start, end_ns=start + 1_000_000, kind="llm",
                      cost=cost, attributes=attrs)  # fmt: skip


def test_spent_since_sums_one_keys_spans_of_the_period(store: Store) -> None:
    mine, other = new_key(store, "mine"), new_key(store, "other")
    with store.write() as s:
        tracing.ingest(s, [
            span(mine, 0.25, DAY + 60), span(mine, 0.5, DAY + 7200), span(mine, None, DAY + 90),
            span(mine, 9.0, DAY - 1),  # yesterday's
            span(other, 3.0, DAY + 60), span(None, 4.0, DAY + 60),
        ])  # fmt: skip
    spent_since = store_spend(store)
    assert asyncio.run(spent_since(mine, int(DAY * 1000))) == pytest.approx(0.75)
    assert asyncio.run(spent_since(mine, int((DAY - 10) * 1000))) == pytest.approx(9.75)
    assert asyncio.run(spent_since("a%b_c", int(DAY * 1000))) == 0.0  # no wildcard matches all


def test_a_restarted_limiter_keeps_the_days_budget(store: Store) -> None:
    key = new_key(store)
    with store.write() as s:
        tracing.ingest(s, [span(key, 0.6, DAY + 60), span(key, 0.3, DAY + 120)])
    who = Caller(key_id=key, limits=KeyLimits(budget_usd=1.0, budget_period="day"))
    limiter = build_limiter(None, spent_since=store_spend(store), clock=Clock(DAY + 3600))

    async def scenario() -> None:
        held = await limiter.reserve(who, tokens=1, cost_usd=0.1)
        assert held.headers["x-opsloop-budget-remaining-usd"] == "0.000000"
        with pytest.raises(RateLimited, match="per day is spent"):
            await limiter.reserve(who, tokens=1, cost_usd=0.01)

    asyncio.run(scenario())


def test_key_limits_are_read_once_then_cached(store: Store) -> None:
    key = new_key(store)
    clock = Clock(100.0)
    lookup = KeyLimitsLookup(store, ttl_s=2.0, clock=clock)

    def limit(**change: object) -> None:
        with store.write() as s:
            services.set_key_limits(s, key, KeyLimitsChange.model_validate(change), ADMIN)

    async def scenario() -> None:
        assert await lookup(key) == KeyLimits()
        limit(rpm=60, budget_usd=5.0, budget_period="day")
        assert await lookup(key) == KeyLimits()  # cached: no query within the TTL
        clock.now += 2.5
        assert await lookup(key) == KeyLimits()  # past it: answered stale, read behind
        await asyncio.sleep(0.2)
        while lookup._reading:
            await asyncio.sleep(0.05)
        assert await lookup(key) == KeyLimits(rpm=60, budget_usd=5.0, budget_period="day")
        limit(clear=True, tpm=1000)
        lookup.forget()
        assert await lookup(key) == KeyLimits(tpm=1000)
        assert await lookup("0" * 32) == KeyLimits()  # unknown: the auth check's business
        many = await asyncio.gather(*(lookup(key) for _ in range(32)))
        assert set(many) == {KeyLimits(tpm=1000)}

    asyncio.run(scenario())
