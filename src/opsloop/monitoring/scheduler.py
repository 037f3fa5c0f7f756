"""The monitoring scheduler: runs due monitors, retries failed alert deliveries, walks loops.

A server runs one on a daemon thread; ``opsloop scheduler`` runs one in the foreground for the
embedded store. Several may run against one database: a monitor is claimed by moving its
``next_run_at`` with a compare-and-set, so each due check runs once, and an alert starts at
most one loop run (see ``loop``). Loop runs advance on a worker thread of their own, so a
retraining that takes minutes never holds up the checks.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import select, update

from opsloop.errors import OpsloopError
from opsloop.monitoring import alerts, loop, services
from opsloop.monitoring.entities import MonitorSpec
from opsloop.monitoring.tables import MonitorRow
from opsloop.timeutil import now_ms

__all__ = ["MonitorScheduler"]

log = logging.getLogger("opsloop.scheduler")


class MonitorScheduler:
    def __init__(
        self, client: Any, store: Any, predictions: Any, *, interval: float = 1.0,
        tick_rollouts: bool = False,
    ) -> None:  # fmt: skip
        self.client, self.store, self.predictions = client, store, predictions
        self.interval = interval
        self.tick_rollouts = tick_rollouts  # a server's rollout controller does it otherwise
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="opsloop-monitors", daemon=True)
        self._loops = ThreadPoolExecutor(1, thread_name_prefix="opsloop-loop")
        self._in_flight: dict[str, Future[Any]] = {}

    def _claim(self, now: int) -> list[str]:
        """Names of due monitors this scheduler won (their next run moved forward)."""
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
        runs = []
        for name in self._claim(now if now is not None else now_ms()):
            try:
                runs.append(services.run_monitor(self.client, self.store, self.predictions, name))
            except OpsloopError as exc:
                log.warning("monitor %s: %s", name, exc.message)
        return runs

    def retry_deliveries(self) -> None:
        with self.store.read() as session:
            due = [row.id for row in alerts.due_deliveries(session, now_ms())]
        services.deliver_alerts(self.store, due)

    def advance_loops(self, *, wait: bool = False) -> None:
        with self.store.read() as session:
            pending = loop.pending_loops(session)
        for loop_id in pending:
            running = self._in_flight.get(loop_id)
            if running is not None and not running.done():
                continue
            self._in_flight[loop_id] = self._loops.submit(
                loop.advance, self.client, self.store, self.predictions, loop_id,
                tick_rollout=self.tick_rollouts,
            )  # fmt: skip
        if wait:
            for future in list(self._in_flight.values()):
                future.result()
        self._in_flight = {k: f for k, f in self._in_flight.items() if not f.done()}

    def tick(self, *, wait: bool = False) -> list[Any]:
        """One pass: due checks, due deliveries, loop runs (``wait``: until they pause)."""
        runs = self.check_monitors()
        self.retry_deliveries()
        self.advance_loops(wait=wait)
        return runs

    def start(self) -> MonitorScheduler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except OpsloopError as exc:
                log.warning("monitoring scheduler: %s", exc.message)  # the database is away

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._loops.shutdown(wait=False, cancel_futures=True)
