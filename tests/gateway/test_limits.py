"""Per-key limits, the same for both limiters: the in-process one and Redis (the real server at
127.0.0.1:6379, a unique key prefix per test). 32 concurrent clients never overshoot a budget or
a rate, settling corrects an estimate, budgets roll over with the UTC day or month, a refused
call reserves nothing, and a Redis that is down fails open or closed as configured."""

from __future__ import annotations

import asyncio
import random
import threading
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
import redis

from opsloop.errors import InvalidInput
from opsloop.errors import RateLimited
from opsloop.errors import StoreError
from opsloop.llm.gateway.config import LimitsConfig
from opsloop.llm.gateway.limits import build_limiter
from opsloop.llm.gateway.limits_memory import MemoryLimiter
from opsloop.llm.gateway.limits_redis import RedisLimiter
from opsloop.llm.gateway.ports import Caller
from opsloop.llm.gateway.ports import KeyLimits
from opsloop.llm.gateway.ports import Limiter
from tests.conftest import free_port

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    """Seconds since the epoch, moved by the test."""

    def __init__(self, iso: str = "2026-12-08T12:00:00") -> None:
        self.now = datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def prefix() -> Iterator[str]:
    """A Redis key prefix of this test's own, and its keys removed afterwards."""
    name = f"opsloop-test:{uuid.uuid4().hex}:"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=name + "*"))
    if keys:
        client.delete(*keys)
    client.close()


MakeLimiter = Callable[..., Limiter]


@pytest.fixture(params=["memory", "redis"])
def make(request: pytest.FixtureRequest, prefix: str) -> MakeLimiter:
    """``make(clock=..., spent_since=...)``: a limiter of the kind under test. Each Redis one has
    its own connections, as separate gateway processes would; they share the test's prefix."""
    if request.param == "memory":
        return lambda **kw: MemoryLimiter(**kw)
    return lambda **kw: RedisLimiter(REDIS_URL, key_prefix=prefix, **kw)


def caller(key: str = "k1", **limits: Any) -> Caller:
    return Caller(key_id=key, user="alice", limits=KeyLimits(**limits))


def run_clients(
    limiters: list[Limiter], per_limiter: int, client: Callable[[Limiter], Any]
) -> list[Any]:
    """``len(limiters)`` threads, each with its own event loop and ``per_limiter`` concurrent
    clients on its limiter: what many gateway processes (Redis) or one process's threads
    (in-process) would do at once. Returns every client's result."""
    results: list[Any] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(limiters))

    def thread(limiter: Limiter) -> None:
        async def main() -> list[Any]:
            try:
                return await asyncio.gather(*(client(limiter) for _ in range(per_limiter)))
            finally:
                if isinstance(limiter, RedisLimiter):
                    await limiter.close()

        start.wait()
        try:
            results.extend(asyncio.run(main()))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=thread, args=(lim,)) for lim in limiters]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


def limiters_for(make: MakeLimiter, count: int, **kw: Any) -> list[Limiter]:
    first = make(**kw)
    if isinstance(first, MemoryLimiter):
        return [first] * count  # one process: its threads share the one limiter
    return [first] + [make(**kw) for _ in range(count - 1)]


def test_32_clients_never_overshoot_a_budget(make: MakeLimiter) -> None:
    who = caller(budget_usd=1.0, budget_period="day")
    limiters = limiters_for(make, 4, clock=Clock())

    async def client(limiter: Limiter) -> float:
        spent = 0.0
        for _ in range(25):
            try:
                held = await limiter.reserve(who, tokens=100, cost_usd=0.03)
            except RateLimited as refused:
                assert refused.details["limit"] == "budget"
                continue
            actual = random.choice([0.01, 0.02, 0.03])  # never more than the estimate
            await asyncio.sleep(0)
            await limiter.settle(held, tokens=50, cost_usd=actual)
            spent += actual
        return spent

    spent = run_clients(limiters, 8, client)
    assert len(spent) == 32
    assert 0.97 <= sum(spent) <= 1.0 + 1e-9  # filled to within one estimate, never past


def test_32_clients_get_exactly_the_estimates_that_fit(make: MakeLimiter) -> None:
    who = caller(budget_usd=1.0, budget_period="month")
    limiters = limiters_for(make, 4, clock=Clock())

    async def client(limiter: Limiter) -> int:
        granted = 0
        for _ in range(10):
            try:
                held = await limiter.reserve(who, tokens=10, cost_usd=0.07)
            except RateLimited:
                continue
            await limiter.settle(held, tokens=10, cost_usd=0.07)
            granted += 1
        return granted

    assert sum(run_clients(limiters, 8, client)) == 14  # 14 * 0.07 = 0.98; a 15th would pass 1


def test_32_clients_never_overshoot_requests_per_minute(make: MakeLimiter) -> None:
    clock = Clock()
    who = caller(rpm=10)
    limiters = limiters_for(make, 4, clock=clock)
    waits: list[float] = []

    async def client(limiter: Limiter) -> int:
        granted = 0
        for _ in range(3):
            try:
                await limiter.reserve(who, tokens=1, cost_usd=0.0)
                granted += 1
            except RateLimited as refused:
                assert refused.details["limit"] == "rpm"
                waits.append(refused.details["retry_after_s"])
        return granted

    assert sum(run_clients(limiters, 8, client)) == 10
    assert set(waits) == {6.0}  # one request refills every 6 s at 10 a minute
    clock.now += 6
    limiter = limiters[0] if isinstance(limiters[0], MemoryLimiter) else make(clock=clock)

    async def once() -> None:
        held = await limiter.reserve(who, tokens=1, cost_usd=0.0)
        assert held.headers["x-ratelimit-remaining-requests"] == "0"
        with pytest.raises(RateLimited):
            await limiter.reserve(who, tokens=1, cost_usd=0.0)

    asyncio.run(once())


def test_settle_replaces_the_estimate_with_the_actual(make: MakeLimiter) -> None:
    who = caller(tpm=1000, budget_usd=1.0, budget_period="day")
    clock = Clock()
    limiter = make(clock=clock)

    async def scenario() -> None:
        held = await limiter.reserve(who, tokens=800, cost_usd=0.9)
        assert held.headers == {
            "x-ratelimit-limit-tokens": "1000",
            "x-ratelimit-remaining-tokens": "200",
            "x-opsloop-budget-remaining-usd": "0.100000",
        }
        with pytest.raises(RateLimited) as over:
            await limiter.reserve(who, tokens=300, cost_usd=0.05)
        assert over.value.details["limit"] == "tpm"
        assert over.value.details["retry_after_s"] == 6.0  # 100 tokens at 1000 a minute
        await limiter.settle(held, tokens=300, cost_usd=0.2)
        await limiter.settle(held, tokens=0, cost_usd=0.0)  # twice: no second refund
        again = await limiter.reserve(who, tokens=700, cost_usd=0.8)
        assert again.headers["x-ratelimit-remaining-tokens"] == "0"
        assert again.headers["x-opsloop-budget-remaining-usd"] == "0.000000"
        with pytest.raises(RateLimited) as spent:
            await limiter.reserve(who, tokens=0, cost_usd=0.000001)
        assert spent.value.details["limit"] == "budget"
        await limiter.settle(again, tokens=900, cost_usd=0.5)  # more tokens, less cost
        with pytest.raises(RateLimited) as debt:  # 200 tokens in debt: 12 s at 1000 a minute
            await limiter.reserve(who, tokens=0, cost_usd=0.3)
        assert (debt.value.details["limit"], debt.value.details["retry_after_s"]) == ("tpm", 12.0)
        clock.now += 12
        third = await limiter.reserve(who, tokens=0, cost_usd=0.3)  # 0.7 spent after settling
        assert third.headers["x-opsloop-budget-remaining-usd"] == "0.000000"

    asyncio.run(scenario())


def test_a_refused_call_reserves_nothing(make: MakeLimiter) -> None:
    who = caller(rpm=2, tpm=100)
    limiter = make(clock=Clock())

    async def scenario() -> None:
        await limiter.reserve(who, tokens=60, cost_usd=0.0)
        with pytest.raises(RateLimited, match="100 tokens per minute"):
            await limiter.reserve(who, tokens=50, cost_usd=0.0)  # 40 left: no request taken
        last = await limiter.reserve(who, tokens=40, cost_usd=0.0)
        assert last.headers["x-ratelimit-remaining-requests"] == "0"
        with pytest.raises(RateLimited, match="exceed this API key's 100 tokens per minute"):
            await limiter.reserve(caller("k2", tpm=100), tokens=101, cost_usd=0.0)
        with pytest.raises(RateLimited, match="exceeds this API key's whole budget"):
            await limiter.reserve(caller("k3", budget_usd=1.0), tokens=1, cost_usd=1.5)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("period", "start", "reset"),
    [
        ("day", "2026-12-31T23:59:59", "2027-01-01T00:00:00Z"),
        ("month", "2026-02-28T23:59:59", "2026-03-01T00:00:00Z"),
        ("month", "2026-12-31T23:59:59", "2027-01-01T00:00:00Z"),
    ],
)
def test_budgets_roll_over_with_the_utc_period(
    make: MakeLimiter, period: str, start: str, reset: str
) -> None:
    clock = Clock(start)
    who = caller(budget_usd=1.0, budget_period=period)
    limiter = make(clock=clock)

    async def scenario() -> None:
        held = await limiter.reserve(who, tokens=1, cost_usd=1.0)
        with pytest.raises(RateLimited, match=f"per {period} is spent") as spent:
            await limiter.reserve(who, tokens=1, cost_usd=0.01)
        assert spent.value.details == {"limit": "budget", "retry_after_s": 1.0, "reset_at": reset}
        clock.now += 1
        fresh = await limiter.reserve(who, tokens=1, cost_usd=0.25)
        assert fresh.headers["x-opsloop-budget-remaining-usd"] == "0.750000"
        await limiter.settle(held, tokens=1, cost_usd=0.5)  # the old period's: no effect now
        after = await limiter.reserve(who, tokens=1, cost_usd=0.25)
        assert after.headers["x-opsloop-budget-remaining-usd"] == "0.500000"

    asyncio.run(scenario())


def test_a_budget_counts_what_was_spent_before_a_restart(make: MakeLimiter) -> None:
    asked: list[tuple[str, int]] = []

    async def spent_since(key_id: str, since_ms: int) -> float:
        asked.append((key_id, since_ms))
        await asyncio.sleep(0.01)  # a store read: every waiting call sees the same answer
        return 0.7

    clock = Clock("2026-12-08T15:30:00")
    limiter = make(clock=clock, spent_since=spent_since)
    who = caller(budget_usd=1.0, budget_period="day")

    async def scenario() -> list[Any]:
        tries = [limiter.reserve(who, tokens=1, cost_usd=0.1) for _ in range(5)]
        return await asyncio.gather(*tries, return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 3  # 0.7 + 3 * 0.1
    assert all(isinstance(o, RateLimited) for o in outcomes if isinstance(o, BaseException))
    midnight = int(datetime(2026, 12, 8, tzinfo=UTC).timestamp() * 1000)
    assert set(asked) == {("k1", midnight)}


@pytest.mark.parametrize("policy", ["open", "closed"])
def test_redis_down_fails_open_or_closed(policy: str) -> None:
    limiter = build_limiter({"redis_url": f"redis://127.0.0.1:{free_port()}/0",
                             "on_store_down": policy})  # fmt: skip
    who = caller(rpm=5, budget_usd=1.0)

    async def scenario() -> None:
        for _ in range(2):  # the first finds it down; the second does not ask again
            if policy == "closed":
                with pytest.raises(StoreError, match="limits fail closed") as down:
                    await limiter.reserve(who, tokens=1, cost_usd=0.01)
                assert down.value.http_status == 503
                assert down.value.details["limits"] == "fail-closed"
            else:
                held = await limiter.reserve(who, tokens=1, cost_usd=0.01)
                assert held.headers == {"x-opsloop-limits": "fail-open"}
                await limiter.settle(held, tokens=1, cost_usd=0.01)

    asyncio.run(scenario())


def test_a_call_without_limits_costs_nothing() -> None:
    limiter = build_limiter(None)

    async def scenario() -> None:
        for who in (Caller(), caller("k1"), Caller(limits=KeyLimits(rpm=1))):
            for _ in range(3):
                held = await limiter.reserve(who, tokens=10, cost_usd=1.0)
                assert (held.token, held.headers) == ("", {})
                await limiter.settle(held, tokens=10, cost_usd=1.0)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"on_store_down": "maybe"}, "limits.on_store_down: Input should be 'open' or 'closed'"),
        ({"redis_url": "http://127.0.0.1:6379"}, "limits.redis_url: must be a redis://"),
        ({"redis_ur": REDIS_URL}, "limits.redis_ur: Extra inputs are not permitted"),
        ({"timeout_s": 0}, "limits.timeout_s: Input should be greater than 0"),
        ({"key_prefix": ""}, "limits.key_prefix: String should have at least 1 character"),
        (["redis://127.0.0.1"], "limits: must be a mapping, got list"),
    ],
)
def test_a_bad_limits_section_is_invalid_input(raw: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        build_limiter(raw)
    assert str(bad.value).startswith(message)


def test_the_section_picks_the_limiter(prefix: str) -> None:
    assert isinstance(build_limiter({}), MemoryLimiter)
    assert isinstance(build_limiter({"on_store_down": "open"}), MemoryLimiter)
    parsed = LimitsConfig.model_validate({"redis_url": REDIS_URL, "key_prefix": prefix})
    assert isinstance(build_limiter(parsed), RedisLimiter)  # the gateway config's own model
    chosen = build_limiter({"redis_url": REDIS_URL, "key_prefix": prefix})
    assert isinstance(chosen, RedisLimiter)

    async def scenario() -> None:
        held = await chosen.reserve(caller(rpm=3), tokens=1, cost_usd=0.0)
        assert held.headers["x-ratelimit-remaining-requests"] == "2"
        await chosen.close()

    asyncio.run(scenario())
    with redis.Redis.from_url(REDIS_URL) as client:
        assert client.exists(f"{prefix}{{k1}}:rate") == 1


@pytest.mark.parametrize("policy", ["open", "closed"])
def test_a_seed_that_fails_gets_the_store_down_policy(make: MakeLimiter, policy: str) -> None:
    answers: list[float | None] = [None, 0.5]  # the store fails once, then answers

    async def spent_since(key_id: str, since_ms: int) -> float:
        answer = answers.pop(0)
        if answer is None:
            raise StoreError("metadata store error: the database is away")
        return answer

    limiter = make(clock=Clock(), spent_since=spent_since, on_store_down=policy)
    who = caller(budget_usd=1.0, budget_period="day")

    async def scenario() -> None:
        if policy == "closed":
            with pytest.raises(StoreError, match="the database is away"):
                await limiter.reserve(who, tokens=1, cost_usd=0.1)
        else:
            held = await limiter.reserve(who, tokens=1, cost_usd=0.1)
            assert held.headers == {"x-opsloop-limits": "fail-open"}
        seeded = await limiter.reserve(who, tokens=1, cost_usd=0.1)  # asks the store again
        assert seeded.headers["x-opsloop-budget-remaining-usd"] == "0.400000"

    asyncio.run(scenario())
