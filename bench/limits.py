"""The gateway's per-key limits: budget overshoot under 32 concurrent clients, and what a
reserve + settle costs, for the in-process limiter and the Redis one (issue 24).

    .venv/bin/python bench/limits.py [--redis redis://127.0.0.1:6379/0] [--calls 3000]

1. Overshoot. 32 clients share one key with a $1 daily budget (then another key with a 100 rpm
   limit); each makes calls in a loop: reserve the estimate ($0.01), wait a moment (the upstream
   call), settle the actual (a random $0.005 to $0.01). Spend past the budget and requests past
   the limit are counted (both must be 0). For Redis the clients are 4 processes of 8, as 4
   gateway workers would be; in-process, 32 coroutines of one process. The peer is
   check-then-record on Redis: read the key's spend before the call and add the cost after it,
   which is how a proxy that records spend when a call ends enforces a budget; its overshoot is
   printed beside ours.
2. Cost. ``--calls`` reserve + settle pairs one after another on a key with all three limits
   (µs per pair, median of 5 rounds), and with 32 at a time (pairs per second).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from opsloop.errors import RateLimited
from opsloop.llm.gateway.limits_memory import MemoryLimiter
from opsloop.llm.gateway.limits_redis import RedisLimiter
from opsloop.llm.gateway.ports import Caller
from opsloop.llm.gateway.ports import KeyLimits
from opsloop.llm.gateway.ports import Limiter

BUDGET, RPM, ESTIMATE = 1.0, 100, 0.01
CLIENTS, PROCESSES = 32, 4


class Frozen:
    """A clock that stands still: no request refills during the run, so the rpm limit is an
    exact count (100 calls, not 100 plus whatever refilled while the bench ran)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def caller(limit: str) -> Caller:
    """A key with the budget only, or the rpm limit only (each must be the one that binds)."""
    if limit == "budget":
        return Caller(key_id=limit, limits=KeyLimits(budget_usd=BUDGET, budget_period="day"))
    return Caller(key_id=limit, limits=KeyLimits(rpm=RPM))


async def client(limiter: Limiter, who: Caller, attempts: int, seed: int) -> tuple[int, float]:
    """(calls let through, their actual cost)."""
    rng, granted, spent = random.Random(seed), 0, 0.0
    for _ in range(attempts):
        try:
            held = await limiter.reserve(who, tokens=100, cost_usd=ESTIMATE)
        except RateLimited:
            await asyncio.sleep(0)
            continue
        await asyncio.sleep(rng.random() / 1000)  # the upstream call
        actual = round(rng.uniform(0.005, ESTIMATE), 6)
        await limiter.settle(held, tokens=80, cost_usd=actual)
        granted, spent = granted + 1, spent + actual
    return granted, spent


async def clients(limiter: Limiter, who: Caller, count: int, attempts: int) -> list[Any]:
    runs = [client(limiter, who, attempts, seed) for seed in range(count)]
    return list(await asyncio.gather(*runs))


def redis_worker(url: str, prefix: str, limit: str, now: float, attempts: int, out: Any) -> None:
    """One gateway process: its own limiter and connections, 8 clients."""
    clock = Frozen()
    clock.now = now

    async def main() -> list[Any]:
        limiter = RedisLimiter(url, key_prefix=prefix, clock=clock)
        try:
            return await clients(limiter, caller(limit), CLIENTS // PROCESSES, attempts)
        finally:
            await limiter.close()

    out.put(asyncio.run(main()))


def report(name: str, limit: str, results: list[tuple[int, float]]) -> None:
    granted = sum(g for g, _ in results)
    spent = sum(s for _, s in results)
    if limit == "budget":
        over = f"budget overshoot ${max(0.0, spent - BUDGET):.6f}"
    else:
        over = f"rpm overshoot {max(0, granted - RPM)} requests"
    print(f"{name:<36} {granted:>5} calls  ${spent:7.4f} spent  {over}")


def redis_processes(url: str, prefix: str, limit: str, attempts: int) -> list[Any]:
    """4 processes of 8 clients on one key: 4 gateway workers sharing Redis."""
    spawn = multiprocessing.get_context("spawn")
    queue: Any = spawn.Queue()
    now = time.time()
    workers = [spawn.Process(target=redis_worker, args=(url, prefix, limit, now, attempts, queue))
               for _ in range(PROCESSES)]  # fmt: skip
    for w in workers:
        w.start()
    results = [r for _ in workers for r in queue.get(timeout=300)]
    for w in workers:
        w.join(60)
    return results


async def check_then_record(url: str, prefix: str, attempts: int) -> list[tuple[int, float]]:
    """The peer: GET the spend, compare, call, INCRBYFLOAT the cost after."""
    conn = redis.asyncio.Redis.from_url(url)
    counter = f"{prefix}peer-spend"

    async def one(seed: int) -> tuple[int, float]:
        rng, granted, spent = random.Random(seed), 0, 0.0
        for _ in range(attempts):
            if float(await conn.get(counter) or 0) + ESTIMATE > BUDGET:
                continue
            await asyncio.sleep(rng.random() / 1000)
            actual = round(rng.uniform(0.005, ESTIMATE), 6)
            await conn.incrbyfloat(counter, actual)
            granted, spent = granted + 1, spent + actual
        return granted, spent

    try:
        return list(await asyncio.gather(*(one(seed) for seed in range(CLIENTS))))
    finally:
        await conn.aclose()


def timing(make: Callable[[], Limiter], calls: int) -> tuple[float, float]:
    """(µs per reserve + settle one at a time, pairs per second 32 at a time)."""
    who = Caller(key_id="timing", limits=KeyLimits(rpm=10**7, tpm=10**12, budget_usd=10**6))

    async def main() -> tuple[float, float]:
        limiter = make()
        rounds = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(calls):
                held = await limiter.reserve(who, tokens=500, cost_usd=0.001)
                await limiter.settle(held, tokens=400, cost_usd=0.0008)
            rounds.append((time.perf_counter() - start) / calls * 1e6)

        async def pairs(n: int) -> None:
            for _ in range(n):
                held = await limiter.reserve(who, tokens=500, cost_usd=0.001)
                await limiter.settle(held, tokens=400, cost_usd=0.0008)

        start = time.perf_counter()
        await asyncio.gather(*(pairs(calls // CLIENTS) for _ in range(CLIENTS)))
        rate = (calls // CLIENTS) * CLIENTS / (time.perf_counter() - start)
        if isinstance(limiter, RedisLimiter):
            await limiter.close()
        return statistics.median(rounds), rate

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--calls", type=int, default=3000, help="reserve + settle pairs")
    parser.add_argument("--attempts", type=int, default=40, help="calls per client")
    args = parser.parse_args()
    prefix = f"opsloop-bench:{uuid.uuid4().hex}:"
    try:
        print(f"{CLIENTS} clients x {args.attempts} calls on one key (${BUDGET:g}/day, then "
              f"{RPM} rpm); estimate ${ESTIMATE}, actual $0.005-0.01")  # fmt: skip
        for limit in ("budget", "rpm"):
            memory = MemoryLimiter(clock=Frozen())
            run = asyncio.run(clients(memory, caller(limit), CLIENTS, args.attempts))
            report("in-process (1 process x 32)", limit, run)
            run = redis_processes(args.redis, prefix, limit, args.attempts)
            report(f"redis ({PROCESSES} processes x {CLIENTS // PROCESSES})", limit, run)
        peer = asyncio.run(check_then_record(args.redis, prefix, args.attempts))
        report("peer: check-then-record on redis", "budget", peer)

        print(f"\nreserve + settle, a key with rpm, tpm and a budget ({args.calls} pairs)")
        for name, make in [
            ("in-process", lambda: MemoryLimiter()),
            ("redis", lambda: RedisLimiter(args.redis, key_prefix=prefix)),
        ]:
            per_call, rate = timing(make, args.calls)
            print(f"{name:<12} {per_call:8.1f} µs per pair one at a time, "
                  f"{rate:10,.0f} pairs/s 32 at a time")  # fmt: skip
    finally:
        conn = redis.Redis.from_url(args.redis)
        keys = list(conn.scan_iter(match=prefix + "*"))
        if keys:
            conn.delete(*keys)
        conn.close()


if __name__ == "__main__":
    main()
