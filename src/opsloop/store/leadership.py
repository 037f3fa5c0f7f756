"""Leadership: one process of several leads a job, and a killed leader is replaced in seconds.

Every server runs the scheduler and the rollout controllers, but only the one that holds the
job's lease (:mod:`opsloop.store.leases`) acts. A :class:`Leadership` thread asks for the lease
every ``ttl_s / 3`` seconds: the leader renews it, the others take it once it has expired. A
leader killed without a word is therefore replaced at most ``ttl_s + ttl_s / 3`` seconds after
its last renewal (10 s leases, the default: within 14 s; ``leader_lease_seconds`` in the
settings sets it for a server's jobs); a leader that stops cleanly lets the lease go and the next
one takes it on its next try.

**No tick runs twice.** Each tick first claims its number with :meth:`Leadership.claim_tick`, a
compare-and-set on the lease row that succeeds only while the lease is still this holder's, at
this epoch, and unexpired by the database's clock. So every tick number is claimed once, by a
holder that led when it claimed it, and a leader that was paused (a long GC, a stopped VM) and
wakes after being replaced cannot start another tick. The limit, said plainly: the claim fences
the *start* of a tick, not each write inside it. A leader paused in the middle of a tick for
longer than its lease can finish that tick while the new leader runs its first one; that is why
each piece of work a tick does is also claimed on its own (a monitor's next run moved with a
compare-and-set, a firing moved ``pending`` → ``running``, a rollout's row locked), so the
overlap can repeat a look but not an action.

``is_leader()`` is this process's own, conservative view: true only within ``ttl_s`` of the
moment before its last successful renewal (by this machine's monotonic clock), which is never
later than the lease's expiry by the database's clock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import Gauge

from opsloop.config import DEFAULT_LEADER_LEASE_SECONDS
from opsloop.errors import OpsloopError
from opsloop.kernel.metrics import REGISTRY
from opsloop.store import leases
from opsloop.store.database import Store

__all__ = ["DEFAULT_TTL_S", "LeaderTicker", "Leadership", "new_holder"]

log = logging.getLogger("opsloop.leases")
DEFAULT_TTL_S = DEFAULT_LEADER_LEASE_SECONDS  # one number, the settings' default

LEADER = Gauge(
    "opsloop_leader", "1 while this process leads the job (holds its lease), else 0",
    ["lease"], registry=REGISTRY,
)  # fmt: skip


def new_holder() -> str:
    """A name for this process as a lease holder: host, pid and a random part (a pid is
    reused; a restarted process is a new holder)."""
    return f"{socket.gethostname()[:200]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leadership:
    """Holds (or waits for) the lease ``name`` on a daemon thread; see the module docstring.

    Thread-safe: ``is_leader``, ``claim_tick`` and ``status`` may be called from any thread.

    Args:
        store: The metadata store every process of the job shares.
        name: The job's lease (``scheduler``, ``rollouts``, ``gateway-rollouts``).
        ttl_s: How long a lease lasts unrenewed; it is renewed every ``ttl_s / 3``.
        holder: This process's name as a holder (default: :func:`new_holder`).

    Example:
        >>> leadership = Leadership(store, "scheduler").start()
        >>> if leadership.claim_tick() is not None:
        ...     run_one_tick()
        >>> leadership.stop()
    """

    def __init__(
        self, store: Store, name: str, *, ttl_s: float = DEFAULT_TTL_S, holder: str | None = None
    ) -> None:
        self.store, self.name, self.ttl_s = store, name, ttl_s
        self.holder = holder or new_holder()
        self.epoch: int | None = None  # the epoch this process leads at, while it does
        self.last_tick: int | None = None
        self.leader_seen: str | None = None  # who held the lease at the last try
        self._valid_until = float("-inf")  # monotonic
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"opsloop-lease-{name}", daemon=True)

    def start(self) -> Leadership:
        """Try for the lease now, then keep trying (or renewing) on the thread."""
        self.try_once()
        self._thread.start()
        return self

    def try_once(self) -> bool:
        """One try: take or renew the lease; whether this process leads now. A store that is
        away is not an answer: a leader keeps leading until its lease runs out by its own
        clock, then stops."""
        asked_at = time.monotonic()
        try:
            lease = leases.acquire_or_renew(self.store, self.name, self.holder, self.ttl_s)
        except OpsloopError as exc:
            log.warning("lease %r: the store did not answer (%s)", self.name, exc.message)
            self._update(None, asked_at, answered=False)
            return self.is_leader()
        self.leader_seen = lease.holder
        self._update(lease.epoch if lease.leads else None, asked_at, answered=True)
        return lease.leads

    def _update(self, epoch: int | None, asked_at: float, *, answered: bool) -> None:
        with self._lock:
            was = self.epoch
            if epoch is not None:
                self.epoch, self._valid_until = epoch, asked_at + self.ttl_s
            elif answered or time.monotonic() >= self._valid_until:
                self.epoch, self._valid_until = None, float("-inf")
            now = self.epoch
        if was != now:  # took the lead, lost it, or took it back at a new epoch
            if now is not None:
                log.info("lease %r: %s leads (epoch %d)", self.name, self.holder, now)
            else:
                log.warning("lease %r: %s no longer leads", self.name, self.holder)
        LEADER.labels(lease=self.name).set(1 if now is not None else 0)

    def is_leader(self) -> bool:
        """Whether this process leads now, by its own conservative clock."""
        with self._lock:
            return self.epoch is not None and time.monotonic() < self._valid_until

    def claim_tick(self) -> int | None:
        """The number of the tick this process may run now, or None when it may not (it does
        not lead, was deposed, or the store is away)."""
        with self._lock:
            epoch = self.epoch if time.monotonic() < self._valid_until else None
        if epoch is None:
            return None
        try:
            tick = leases.claim_tick(self.store, self.name, self.holder, epoch)
        except OpsloopError:
            return None
        if tick is None:  # deposed while it slept: the next try says so
            return None
        self.last_tick = tick
        log.debug("lease %r: tick %d by %s (epoch %d)", self.name, tick, self.holder, epoch)
        return tick

    def status(self) -> dict[str, Any]:
        """What ``/healthz`` shows of this lease."""
        leads = self.is_leader()
        return {
            "leader": leads,
            "holder": self.holder,
            "epoch": self.epoch if leads else None,
            "last_tick": self.last_tick,
            "held_by": self.leader_seen,
        }

    def _run(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            self.try_once()

    def stop(self) -> None:
        """Stop trying, and let the lease go if this process holds it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        with self._lock:
            epoch, self.epoch, self._valid_until = self.epoch, None, float("-inf")
        LEADER.labels(lease=self.name).set(0)
        if epoch is not None:
            with contextlib.suppress(OpsloopError):  # the store is away: the lease runs out
                leases.release(self.store, self.name, self.holder, epoch)


class LeaderTicker:
    """Calls ``tick`` every ``interval_s`` seconds on a daemon thread, each time only if
    ``leadership`` claims the tick: a per-process loop turned into one loop for all processes.
    It owns ``leadership``: :meth:`start` and :meth:`stop` start and stop it too.

    Args:
        leadership: The job's lease (not started yet).
        tick: One pass of the job; an ``OpsloopError`` it raises (the store away) is logged and
            the next pass tries again.
        interval_s: Seconds between passes.
    """

    def __init__(
        self, leadership: Leadership, tick: Callable[[], object], *, interval_s: float = 1.0
    ) -> None:
        self.leadership, self.tick, self.interval_s = leadership, tick, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"opsloop-{leadership.name}", daemon=True
        )

    def start(self) -> LeaderTicker:
        self.leadership.start()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if self.leadership.claim_tick() is None:
                continue
            try:
                self.tick()
            except OpsloopError as exc:
                log.warning("%s: %s", self.leadership.name, exc.message)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.leadership.stop()
