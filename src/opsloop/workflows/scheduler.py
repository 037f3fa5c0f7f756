"""The scheduler: one loop that runs everything opsloop does by itself.

Each pass (``tick``): the monitor checks that are due, the alert deliveries to retry, the
pipeline triggers' new firings and the loop runs to advance. A server runs one on a daemon
thread; ``opsloop scheduler`` runs one in the foreground for the embedded store. Several may run
against one database, and each piece of work still happens once: a due monitor is claimed by
moving its ``next_run_at`` with a compare-and-set, a firing is unique per (trigger, reason) and
claimed ``pending`` → ``running`` the same way, and an alert starts at most one loop run.
Pipeline runs whose process died on this host are closed as FAILED (``pipelines.orphans``).
Handed a :class:`~opsloop.store.leadership.Leadership`, the loop on the thread ticks only while
this process leads (one scheduler for all the servers on one store, each tick numbered once:
see that module for what it guarantees); closing this host's orphans runs on every process.
Pipelines (triggered runs and retrainings) run on a worker thread of their own, one at a time,
so a long training never delays the checks.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select
from sqlalchemy import update

from opsloop.errors import OpsloopError
from opsloop.kernel.code_policy import ANY_CODE
from opsloop.kernel.code_policy import CodePolicy
from opsloop.kernel.timeutil import now_ms
from opsloop.registry.promotion import PromotionContext
from opsloop.store.leadership import Leadership

__all__ = ["Scheduler"]

log = logging.getLogger("opsloop.scheduler")
ORPHANS_EVERY_S = 60.0
RETENTION_EVERY_S = 60.0  # how often to ask whether a retention sweep is due (hourly per kind)


class Scheduler:
    """Runs the due work of one store (see the module docstring).

    Args:
        client: The client the work runs through (pipelines, data exports, rollouts).
        store: The metadata store it claims work in.
        promotions: Where the retraining loop's gate reads models and data from.
        predictions: The prediction log the monitors read.
        code: What the pipelines of triggers and retraining policies may import (a server's
            allow-list; the embedded store's own scheduler runs its user's code).
    """

    def __init__(
        self, client: Any, store: Any, promotions: PromotionContext, predictions: Any, *,
        interval: float = 1.0, tick_rollouts: bool = False, leadership: Leadership | None = None,
        code: CodePolicy = ANY_CODE,
    ) -> None:  # fmt: skip
        self.client, self.store, self.predictions = client, store, predictions
        self.code = code
        self.promotions = promotions
        self.interval = interval
        self.tick_rollouts = tick_rollouts  # a server's rollout controller does it otherwise
        self.leadership = leadership  # owned: started and stopped with the scheduler
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="opsloop-scheduler", daemon=True)
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="opsloop-pipelines")
        self._in_flight: dict[str, Future[Any]] = {}
        self._orphans_checked = float("-inf")
        self._retention_checked = float("-inf")
        self._retention: Future[Any] | None = None
        self._retention_worker = ThreadPoolExecutor(1, thread_name_prefix="opsloop-retention")

    # -- monitors -----------------------------------------------------------------------------
    def _claim_monitors(self, now: int) -> list[str]:
        """Names of due monitors this scheduler won (their next run moved forward)."""
        from opsloop.monitoring.entities import MonitorSpec
        from opsloop.monitoring.tables import MonitorRow

        with self.store.read() as session:
            due = session.execute(
                select(
                    MonitorRow.id, MonitorRow.name, MonitorRow.next_run_at, MonitorRow.spec
                ).where(MonitorRow.enabled == 1, MonitorRow.next_run_at <= now)
            ).all()
        won = []
        for monitor_id, name, next_run_at, spec in due:
            every = int(MonitorSpec.model_validate_json(spec).every_seconds * 1000)
            with self.store.write() as session:
                moved = session.execute(
                    update(MonitorRow)
                    .where(MonitorRow.id == monitor_id, MonitorRow.next_run_at == next_run_at)
                    .values(next_run_at=now + every)
                ).rowcount
            if moved:
                won.append(name)
        return won

    def check_monitors(self, now: int | None = None) -> list[Any]:
        from opsloop.monitoring import services

        runs = []
        for name in self._claim_monitors(now if now is not None else now_ms()):
            try:
                runs.append(services.run_monitor(
                    self.store, self.predictions, name, models=self.client.models
                ))  # fmt: skip
            except OpsloopError as exc:
                log.warning("monitor %s: %s", name, exc.message)
        return runs

    def retry_deliveries(self) -> None:
        from opsloop.monitoring import alerts
        from opsloop.monitoring import services

        with self.store.read() as session:
            due = [row.id for row in alerts.due_deliveries(session, now_ms())]
        services.deliver_alerts(self.store, due)

    # -- work on the pipeline worker ----------------------------------------------------------
    def _submit(self, key: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        running = self._in_flight.get(key)
        if running is None or running.done():
            self._in_flight[key] = self._worker.submit(fn, *args, **kwargs)

    def _wait(self, wait: bool) -> None:
        if wait:
            for future in list(self._in_flight.values()):
                future.result()
        self._in_flight = {k: f for k, f in self._in_flight.items() if not f.done()}

    def advance_loops(self, *, wait: bool = False) -> None:
        from opsloop.monitoring.loop import pending_loops
        from opsloop.workflows.retraining import advance

        with self.store.read() as session:
            pending = pending_loops(session)
        for loop_id in pending:
            self._submit(
                f"loop:{loop_id}", advance, self.client, self.store, self.promotions,
                self.predictions, loop_id, tick_rollout=self.tick_rollouts, code=self.code,
            )  # fmt: skip
        self._wait(wait)

    def run_pending_firings(self, *, wait: bool = False) -> None:
        """Run the pending firings, each acting as its trigger's creator (see
        ``workflows.authors``): the runs it starts are theirs, not the server's OS user's."""
        from opsloop.pipelines import triggers
        from opsloop.workflows.authors import firing_authors
        from opsloop.workflows.authors import run_as

        triggers.collect_due(self.store)
        with self.store.read() as session:
            pending = triggers.pending_firings(session)
            authors = firing_authors(session, pending)
        for firing_id in pending:
            self._submit(f"firing:{firing_id}", run_as, authors.get(firing_id),
                         triggers.run_firing, self.client, self.store, firing_id,
                         self.code)  # fmt: skip
        self._wait(wait)

    def close_orphans(self) -> list[str]:
        """Close pipeline runs whose process on this host died (see ``pipelines.orphans``):
        on the first pass, then once every ``ORPHANS_EVERY_S``."""
        from opsloop.pipelines.orphans import close_orphans

        now = time.monotonic()
        if now - self._orphans_checked < ORPHANS_EVERY_S:
            return []
        self._orphans_checked = now
        return close_orphans(self.store)

    def sweep_retention(self, *, wait: bool = False) -> None:
        """Delete what the retention settings no longer keep (``workflows.privacy``): asked
        once every ``RETENTION_EVERY_S``, each kind swept at most once an hour, on a thread of
        its own so that a long first sweep never delays the checks."""
        from opsloop.workflows.privacy import sweep_quietly

        now = time.monotonic()
        if now - self._retention_checked >= RETENTION_EVERY_S:
            self._retention_checked = now
            if self._retention is None or self._retention.done():
                self._retention = self._retention_worker.submit(
                    sweep_quietly, self.store, self.predictions
                )
        if wait and self._retention is not None:
            self._retention.result()

    # -- the loop -----------------------------------------------------------------------------
    def tick(self, *, wait: bool = False) -> list[Any]:
        """One pass; with ``wait``, until the pipelines it started have finished or paused."""
        self.close_orphans()
        runs = self.check_monitors()
        self.retry_deliveries()
        self.run_pending_firings()
        self.advance_loops(wait=wait)
        self.sweep_retention(wait=wait)
        return runs

    def start(self) -> Scheduler:
        if self.leadership is not None:
            self.leadership.start()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:  # without a leadership every tick is ours; with one, each tick we claim
                if self.leadership is None or self.leadership.claim_tick() is not None:
                    self.tick()
                else:
                    self.close_orphans()  # this host's dead runs: every process looks
            except OpsloopError as exc:
                log.warning("scheduler: %s", exc.message)  # the database is away: next pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._worker.shutdown(wait=False, cancel_futures=True)
        self._retention_worker.shutdown(wait=False, cancel_futures=True)
        if self.leadership is not None:
            self.leadership.stop()
