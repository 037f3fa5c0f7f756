"""The gateway's rollout controller: judges each route's candidate against its thresholds every
``interval_s``, steps its share up, promotes it, or rolls it back, and keeps every gateway
process's routers on the share the store holds.

A tick, for each route with a rollout that is running and due:

1. the online eval scores a sample of both targets' new answers (its own transaction, so span
   ingest never waits on the assertions);
2. in one transaction, with the route's row locked (so two gateways never judge one window
   twice), the candidate's window since its share last changed is judged by
   :func:`opsloop.evaluation.canary.analyse`, the same verdict a model deployment's rollout
   gets. ``pass`` moves a canary to its next step (or promotes it), ``fail`` sends the share to
   0, and ``inconclusive`` (too few calls or scores) waits, failing only after
   ``judge.max_inconclusive_s``. The baseline's window is recorded beside the candidate's.

Then every route's :class:`~.rollout_split.Split` is refreshed from the store, which also picks
up a person's override (``opsloop gateway-routes rollout``) and another gateway's step.
Handed a :class:`~opsloop.store.leadership.Leadership`, a controller judges only on the ticks it
claims as the leader (one judge for all the gateways on one store); every gateway still syncs
and refreshes its own splits.
Time is ``clock()`` in ms, handed in, so tests drive :meth:`RolloutController.tick` directly.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import OpsloopError
from opsloop.evaluation.canary import analyse
from opsloop.kernel.timeutil import now_ms
from opsloop.llm.gateway.config import RouteConfig
from opsloop.llm.gateway.rollout_evals import score_sample
from opsloop.llm.gateway.rollout_split import Split
from opsloop.llm.gateway.rollout_state import CONTROLLER
from opsloop.llm.gateway.rollout_state import change
from opsloop.llm.gateway.rollout_state import route_row
from opsloop.llm.gateway.rollout_state import sync_route
from opsloop.llm.gateway.rollout_stats import target_window
from opsloop.llm.gateway.rollout_tables import RouteStateRow
from opsloop.llm.gateway.router import Route
from opsloop.store.database import Store
from opsloop.store.leadership import Leadership

__all__ = ["RolloutController", "judge_route"]

log = logging.getLogger(__name__)


def judge_route(session: Session, config: RouteConfig, now: int) -> str | None:
    """Judge the route's rollout if it is running and due; the verdict, or None when it was
    not judged."""
    rollout = config.rollout
    assert rollout is not None
    row = route_row(session, config.name, lock=True)
    if row.status != "running" or row.step_started_at is None:
        return None
    if row.judged_at is not None and now - row.judged_at < rollout.interval_s * 1000:
        return None
    since, judge = row.step_started_at, rollout.judge
    candidate = target_window(session, config.name, rollout.candidate, since, judge)
    baseline = target_window(session, config.name, rollout.baseline, since, judge)
    verdict, reasons = analyse(judge.bounds(), candidate)
    waited_s = (now - since) / 1000
    if verdict == "inconclusive" and waited_s >= judge.max_inconclusive_s:
        verdict, reasons = "fail", [f"inconclusive for {waited_s:.0f} s: {'; '.join(reasons)}"]
    seen = {"candidate": candidate, "baseline": baseline, "share": row.share, "step": row.step}
    details = {**seen, "verdict": verdict, "reasons": reasons}
    if verdict == "fail":
        why = "judged: " + "; ".join(reasons)
        change(session, row, "rollback", CONTROLLER, why, now, share=0.0, status="rolled_back",
               details=details)  # fmt: skip
    elif verdict == "pass" and rollout.mode == "canary":
        passed = f"passed at {row.share:g}%"
        nxt = row.step + 1
        if nxt >= len(rollout.steps) or rollout.steps[nxt] >= 100:
            change(session, row, "promote", CONTROLLER, passed + ": promoted to 100%", now,
                   share=100.0, status="promoted", details=details)  # fmt: skip
        else:
            share = rollout.steps[nxt]
            change(session, row, "step", CONTROLLER, f"{passed}: now {share:g}%", now,
                   share=share, status="running", step=nxt, details=details)  # fmt: skip
    row.judged_at = now
    row.verdict = json.dumps({"at": now, **details}, default=repr)
    return verdict


class RolloutController:
    """Runs the rollouts of one gateway's routes (see the module docstring).

    Args:
        store: The metadata store holding the routes' state and the gateway's spans.
        routes: The gateway's routes by name (their ``split`` is set from the store).
        clock: Milliseconds since the epoch (tests hand in their own).
        poll_s: How often the thread ticks; each route is still judged every ``interval_s``.
        leadership: The lease that decides which gateway judges (owned: started and stopped
            with the controller); without one this controller judges on every tick.
    """

    def __init__(
        self,
        store: Store,
        routes: dict[str, Route],
        *,
        clock: Callable[[], int] = now_ms,
        poll_s: float = 1.0,
        leadership: Leadership | None = None,
    ) -> None:
        self.store = store
        self.leadership = leadership
        self.routes = routes
        self.clock = clock
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> None:
        """Register every route in the store (starting or ending rollouts as the config says)
        and take up the shares it holds."""
        now = self.clock()
        with self.store.write() as session:
            for route in self.routes.values():
                sync_route(session, route.config, CONTROLLER, now)
        self.refresh()

    def refresh(self) -> None:
        """Point each route's split at the share the store holds now."""
        with self.store.read() as session:
            rows = session.scalars(
                select(RouteStateRow).where(RouteStateRow.route.in_(list(self.routes)))
            ).all()
        for row in rows:
            route = self.routes[row.route]
            ok = row.candidate is not None and row.share is not None and row.baseline is not None
            route.split = Split(row.baseline, row.candidate, row.share) if ok else None  # type: ignore[arg-type]

    def tick(self) -> dict[str, str]:
        """Judge every due rollout once, then refresh the splits; the verdicts by route."""
        verdicts: dict[str, str] = {}
        if self.leadership is not None and self.leadership.claim_tick() is None:
            self.refresh()  # another gateway judges: take up what it decided
            return verdicts
        for route in self.routes.values():
            rollout = route.config.rollout
            if rollout is None:
                continue
            if rollout.judge.assertions:
                with self.store.read() as session:
                    row = route_row(session, route.name)
                    since, running = row.step_started_at, row.status == "running"
                if running and since is not None:
                    with self.store.write() as session:
                        targets = [rollout.baseline, rollout.candidate]
                        score_sample(session, route.name, targets, since, rollout.judge)
            with self.store.write() as session:
                verdict = judge_route(session, route.config, self.clock())
            if verdict is not None:
                verdicts[route.name] = verdict
        self.refresh()
        return verdicts

    def start(self) -> RolloutController:
        """Sync, then tick on a daemon thread every ``poll_s`` until :meth:`stop` (a store that
        is away at start is synced with on a later tick; meanwhile static weights apply)."""
        if self.leadership is not None:
            self.leadership.start()
        self._thread = threading.Thread(target=self._run, name="opsloop-gateway-rollouts")
        self._thread.daemon = True
        self._thread.start()
        return self

    def _run(self) -> None:
        synced = False
        while True:
            try:
                if not synced:
                    self.sync()
                    synced = True
                else:
                    self.tick()
            except OpsloopError:
                log.warning("gateway rollouts: the store is away; trying again", exc_info=True)
            if self._stop.wait(self.poll_s):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self.leadership is not None:
            self.leadership.stop()
