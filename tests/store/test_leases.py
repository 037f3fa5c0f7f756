"""Leases on SQLite and PostgreSQL: one compare-and-set decides, so two holders never both lead,
an expired lease changes hands with a new epoch, and a deposed holder cannot claim a tick."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from opsloop.errors import InvalidInput
from opsloop.schema import open_store
from opsloop.store import leases
from opsloop.store.database import Store
from opsloop.store.leadership import Leadership
from opsloop.store.leadership import LeaderTicker
from opsloop.store.leases import LEASES


def _expire(store: Store, name: str) -> None:
    """Move the lease's expiry into the past, as the clock would."""
    with store.write() as session:
        session.execute(update(LEASES).where(LEASES.c.name == name).values(expires_at_ms=1))


def test_two_holders_only_one_leads(database_url: str) -> None:
    store = open_store(database_url)
    first = leases.acquire_or_renew(store, "scheduler", "a", 10)
    second = leases.acquire_or_renew(store, "scheduler", "b", 10)
    assert first.leads and first.epoch == 1
    assert not second.leads and second.holder == "a"
    other = leases.acquire_or_renew(store, "rollouts", "b", 10)  # another job, its own lease
    assert other.leads


def test_renewal_keeps_the_lease_and_its_epoch(database_url: str) -> None:
    store = open_store(database_url)
    first = leases.acquire_or_renew(store, "scheduler", "a", 10)
    again = leases.acquire_or_renew(store, "scheduler", "a", 10)
    assert again.leads and again.epoch == first.epoch
    assert again.expires_at_ms >= first.expires_at_ms
    assert not leases.acquire_or_renew(store, "scheduler", "b", 10).leads


def test_an_expired_lease_changes_hands_with_a_new_epoch(database_url: str) -> None:
    store = open_store(database_url)
    leases.acquire_or_renew(store, "scheduler", "a", 10)
    _expire(store, "scheduler")
    taken = leases.acquire_or_renew(store, "scheduler", "b", 10)
    assert taken.leads and taken.epoch == 2
    late = leases.acquire_or_renew(store, "scheduler", "a", 10)  # the old leader wakes up
    assert not late.leads and late.holder == "b"


def test_a_deposed_holder_cannot_claim_a_tick(database_url: str) -> None:
    store = open_store(database_url)
    old = leases.acquire_or_renew(store, "scheduler", "a", 10)
    assert leases.claim_tick(store, "scheduler", "a", old.epoch) == 1
    assert leases.claim_tick(store, "scheduler", "a", old.epoch) == 2
    _expire(store, "scheduler")
    assert leases.claim_tick(store, "scheduler", "a", old.epoch) is None  # expired: no tick
    new = leases.acquire_or_renew(store, "scheduler", "b", 10)
    assert leases.claim_tick(store, "scheduler", "b", new.epoch) == 3  # numbering goes on
    assert leases.claim_tick(store, "scheduler", "a", old.epoch) is None
    assert leases.claim_tick(store, "scheduler", "b", old.epoch) is None  # a stale epoch


def test_release_hands_over_at_once(database_url: str) -> None:
    store = open_store(database_url)
    lease = leases.acquire_or_renew(store, "scheduler", "a", 10)
    assert not leases.release(store, "scheduler", "b", lease.epoch)  # not b's to release
    assert leases.release(store, "scheduler", "a", lease.epoch)
    taken = leases.acquire_or_renew(store, "scheduler", "b", 10)
    assert taken.leads and taken.epoch == lease.epoch + 1


@pytest.mark.parametrize(
    ("name", "holder", "ttl_s", "message"),
    [
        ("", "a", 10, "lease name"),
        ("x" * 101, "a", 10, "lease name"),
        ("scheduler", "", 10, "lease holder"),
        ("scheduler", "a", 0, "at most 3600"),
        ("scheduler", "a", 7200, "at most 3600"),
    ],
)
def test_bad_lease_arguments_are_invalid_input(
    sqlite_url: str, name: str, holder: str, ttl_s: float, message: str
) -> None:
    store = open_store(sqlite_url)
    with pytest.raises(InvalidInput, match=message):
        leases.acquire_or_renew(store, name, holder, ttl_s)


def test_threads_hammering_one_lease_never_both_lead(database_url: str) -> None:
    """Eight holders ask at once, again and again until each has led three times and let its
    lease run out: at every epoch exactly one holder won it, and each tick number was
    claimed once."""
    store = open_store(database_url)
    wins: list[tuple[int, str]] = []
    ticks: list[int] = []
    lock = threading.Lock()

    deadline = time.monotonic() + 60  # every holder keeps asking until it has led (or this)

    def contend(holder: str) -> None:
        won = 0
        while time.monotonic() < deadline:
            lease = leases.acquire_or_renew(store, "scheduler", holder, 10)
            if lease.leads:
                tick = leases.claim_tick(store, "scheduler", holder, lease.epoch)
                with lock:
                    wins.append((lease.epoch, holder))
                    if tick is not None:
                        ticks.append(tick)
                won += 1
                if won == 3:  # step aside: the lease runs out and another takes it
                    _expire(store, "scheduler")
                    return

    threads = [threading.Thread(target=contend, args=(f"h{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    holders_by_epoch: dict[int, set[str]] = {}
    for epoch, holder in wins:
        holders_by_epoch.setdefault(epoch, set()).add(holder)
    assert len(holders_by_epoch) > 1  # it did change hands
    assert all(len(holders) == 1 for holders in holders_by_epoch.values())
    assert sorted(ticks) == list(range(1, len(ticks) + 1))  # no number twice, none skipped


def _contend_in_a_process(
    url: str, holder: str, rounds: int, start: Any, out: multiprocessing.Queue
) -> None:
    store = Store(url)
    won = []
    start.wait()  # every process contends from the same moment
    for _ in range(rounds):
        lease = leases.acquire_or_renew(store, "scheduler", holder, 0.05)
        if lease.leads:
            tick = leases.claim_tick(store, "scheduler", holder, lease.epoch)
            won.append((lease.epoch, holder, tick))
            if len(won) % 5 == 0:  # hand over now and then, besides by expiry
                leases.release(store, "scheduler", holder, lease.epoch)
    store.dispose()
    out.put(won)


def test_processes_hammering_one_lease_never_both_lead(database_url: str) -> None:
    """Four processes with 50 ms leases, each letting the lease go now and then: it changes
    hands many times, and each epoch still has one holder, each tick one claimer."""
    store = open_store(database_url)
    store.dispose()
    context = multiprocessing.get_context("spawn")
    out, start = context.Queue(), context.Barrier(4)
    workers = [
        context.Process(target=_contend_in_a_process, args=(database_url, f"p{i}", 100, start, out))
        for i in range(4)
    ]
    for worker in workers:
        worker.start()
    won = [entry for _ in workers for entry in out.get(timeout=120)]
    for worker in workers:
        worker.join(30)
    holders_by_epoch: dict[int, set[str]] = {}
    for epoch, holder, _ in won:
        holders_by_epoch.setdefault(epoch, set()).add(holder)
    assert len(holders_by_epoch) > 1  # it changed hands (how often depends on the scheduler)
    assert all(len(holders) == 1 for holders in holders_by_epoch.values())
    claimed = [tick for _, _, tick in won if tick is not None]
    assert not [t for t, n in Counter(claimed).items() if n > 1]


def test_leadership_hands_over_when_the_leader_stops(database_url: str) -> None:
    store = open_store(database_url)
    first = Leadership(store, "scheduler", ttl_s=10).start()
    second = Leadership(store, "scheduler", ttl_s=10).start()
    try:
        assert first.is_leader() and not second.is_leader()
        assert second.status()["held_by"] == first.holder
        assert first.claim_tick() == 1 and second.claim_tick() is None
        first.stop()  # a clean stop lets the lease go
        assert second.try_once() and second.is_leader()
        assert second.claim_tick() == 2
        assert second.status() | {"holder": None} == {
            "leader": True, "holder": None, "epoch": 2, "last_tick": 2, "held_by": second.holder,
        }  # fmt: skip
    finally:
        first.stop()
        second.stop()


def test_a_leader_that_wakes_after_being_replaced_runs_no_tick(database_url: str) -> None:
    store = open_store(database_url)
    sleeper = Leadership(store, "scheduler", ttl_s=10)
    other = Leadership(store, "scheduler", ttl_s=10)
    try:
        assert sleeper.try_once() and sleeper.claim_tick() == 1
        _expire(store, "scheduler")  # the sleeper missed its renewals: its lease ran out
        assert other.try_once()
        assert sleeper.is_leader()  # by its own clock it still leads: it has not asked
        assert sleeper.claim_tick() is None  # but the store refuses its tick
        assert other.claim_tick() == 2
        assert not sleeper.try_once() and not sleeper.is_leader()
        assert sleeper.status()["held_by"] == other.holder
    finally:
        sleeper.stop()
        other.stop()


def test_leader_ticker_runs_the_job_only_on_the_leader(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'opsloop.db'}")
    runs: Counter[str] = Counter()
    tickers = [
        LeaderTicker(Leadership(store, "job", holder=name), lambda n=name: runs.update([n]),
                     interval_s=0.01)
        for name in ("a", "b")
    ]  # fmt: skip
    for ticker in tickers:
        ticker.start()
    deadline = time.monotonic() + 30
    while sum(runs.values()) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    for ticker in tickers:
        ticker.stop()
    assert set(runs) == {"a"}  # the first to start leads and alone runs the job
    assert runs["a"] == leases.read_lease(store, "job").ticks
