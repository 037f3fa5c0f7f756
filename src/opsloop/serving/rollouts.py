"""Progressive rollouts: a state machine that walks a candidate through its steps, analyses its
traffic, and promotes it or rolls it back, in the style of Argo Rollouts and Flagger.

``tick`` advances one rollout as far as it can right now. Weight steps apply at once. Pause
and analysis steps read the candidate's window of the prediction log (its requests since the
weight last changed) and judge each check. No traffic, or too few samples (labels, for the
quality metrics), is *inconclusive*: the step waits, and after ``max_inconclusive_seconds`` it
counts as a failure, never as a pass. A failed analysis counts against ``failure_limit`` and
restarts the window; past the limit the weight returns to the stable version, the deployment
and the rollout are marked degraded, and the reasons go into the deployment's history (its
audit log) with an ``alert`` entry. When the last step passes, the candidate takes all traffic
and the ``champion`` alias. One rollout per deployment runs at a time (a second is a 409).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import OpsloopError
from opsloop.evaluation.canary import analyse
from opsloop.governance import audit
from opsloop.governance.acting import author_principal
from opsloop.governance.acting import run_as
from opsloop.governance.acting import via
from opsloop.kernel.identity import current_user
from opsloop.kernel.periodic import Periodic
from opsloop.kernel.timeutil import now_ms
from opsloop.serving import services
from opsloop.serving.entities import TrafficPolicy
from opsloop.serving.rollout_entities import Analysis
from opsloop.serving.rollout_entities import Rollout
from opsloop.serving.rollout_entities import RolloutSpec
from opsloop.serving.tables import DeploymentRow
from opsloop.serving.tables import RolloutRow
from opsloop.store.columns import newest_rows
from opsloop.store.database import Store

__all__ = ["RolloutController", "abort", "analyse", "get_rollout", "start", "tick"]

CONTROLLER = "rollout-controller"
Window = Callable[[str, int, int], dict[str, Any]]


def _entity(row: RolloutRow, deployment: str) -> Rollout:
    return Rollout(
        id=row.id, deployment=deployment, spec=RolloutSpec.model_validate_json(row.spec),
        status=row.status, step=row.step, failures=row.failures,
        analyses=[Analysis(**a) for a in json.loads(row.analyses)], message=row.message,
        created_at=row.created_at, updated_at=row.updated_at,
    )  # fmt: skip


def _running(session: Session, deployment_id: str) -> RolloutRow | None:
    return session.scalars(
        select(RolloutRow).where(
            RolloutRow.deployment_id == deployment_id, RolloutRow.status == "running"
        )
    ).first()


def start(session: Session, name: str, spec: RolloutSpec, actor: str) -> Rollout:
    """Begin a rollout of ``spec.candidate`` on ``name`` (its traffic starts at 0%)."""
    deployment = services.deployment_row(session, name)
    if _running(session, deployment.id) is not None:
        raise Conflict(f"deployment {name!r} already has a rollout running; abort it first")
    stable = TrafficPolicy.model_validate_json(deployment.policy).stable
    if spec.candidate == stable:
        raise InvalidInput(f"v{spec.candidate} is already the stable version of {name!r}")
    services.set_policy(
        session, name, TrafficPolicy(mode="canary", stable=stable, candidate=spec.candidate),
        actor, action="rollout", reason=f"rollout of v{spec.candidate} started",
    )  # fmt: skip
    now = now_ms()
    row = RolloutRow(
        id=uuid.uuid4().hex, deployment_id=deployment.id, spec=spec.model_dump_json(),
        status="running", step=0, step_started_at=now, window_started_at=now, failures=0,
        analyses="[]",
        created_at=now, updated_at=now, created_by=actor,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return _entity(row, name)


def get_rollout(session: Session, name: str) -> Rollout:
    """The deployment's latest rollout."""
    deployment = services.deployment_row(session, name)
    rows = newest_rows(session, RolloutRow.deployment_id, deployment.id, RolloutRow.created_at, 1)
    if not rows:
        raise NotFound(f"deployment {name!r} has had no rollout")
    return _entity(rows[0], name)


def abort(session: Session, name: str, actor: str, reason: str | None = None) -> Rollout:
    deployment = services.deployment_row(session, name)
    row = _running(session, deployment.id)
    if row is None:
        raise InvalidInput(f"deployment {name!r} has no rollout running")
    services.rollback(session, name, actor, reason or "rollout aborted")
    row.status, row.message, row.updated_at = "aborted", reason or "aborted", now_ms()
    return _entity(row, name)


def _record(row: RolloutRow, analysis: Analysis) -> None:
    analyses = json.loads(row.analyses)
    if (
        analyses
        and analyses[-1]["step"] == analysis.step
        and analyses[-1]["verdict"] == "inconclusive"
    ):
        analyses.pop()  # keep the latest look at a waiting step, not one per tick
    analyses.append(analysis.model_dump())
    row.analyses = json.dumps(analyses[-100:])


def tick(session: Session, rollout_id: str, window: Window, now: int | None = None) -> Rollout:
    """Advance one rollout as far as it can go now, for whoever the caller acts as (the
    controller acts as the rollout's creator: :class:`RolloutController`); what it records
    names the controller alongside (``... via rollout-controller``)."""
    actor = current_user()
    row = session.get(RolloutRow, rollout_id, with_for_update=True)
    if row is None:
        raise NotFound(f"rollout {rollout_id} does not exist")
    deployment = session.get(DeploymentRow, row.deployment_id)
    assert deployment is not None
    name = deployment.name
    spec = RolloutSpec.model_validate_json(row.spec)
    now = now if now is not None else now_ms()
    before = (row.status, row.step)
    while row.status == "running":
        if row.step >= len(spec.steps):
            services.promote(session, name, actor, alias=spec.promote_alias)
            row.status, row.message = "succeeded", f"v{spec.candidate} promoted"
            break
        step = spec.steps[row.step]
        if step.set_weight is not None:
            stable = TrafficPolicy.model_validate_json(deployment.policy).stable
            policy = TrafficPolicy(
                mode="canary", stable=stable, candidate=spec.candidate, weight=step.set_weight
            )
            reason = f"step {row.step + 1}: weight {step.set_weight:g}%"
            services.set_policy(session, name, policy, actor, action="rollout",
                                reason=via(reason, CONTROLLER))  # fmt: skip
            row.step, row.step_started_at, row.window_started_at = row.step + 1, now, now
            continue
        seen = window(name, spec.candidate, row.window_started_at)
        verdict, reasons = analyse(spec.checks, seen)
        elapsed_s = (now - row.step_started_at) / 1000
        if verdict == "inconclusive" and elapsed_s >= spec.max_inconclusive_seconds:
            verdict, reasons = "fail", [f"inconclusive for {elapsed_s:.0f} s: {'; '.join(reasons)}"]
        _record(row, Analysis(at=now, step=row.step, verdict=verdict, window=seen, reasons=reasons))  # type: ignore[arg-type]
        if verdict == "fail":
            row.failures += 1
            if row.failures > spec.failure_limit:
                _degrade(session, row, deployment, reasons, actor)
                break
            row.step_started_at = row.window_started_at = now  # measure the step again
            break
        done = step.analysis or (
            (step.pause_seconds is None or elapsed_s >= step.pause_seconds)
            and (step.pause_requests is None or seen.get("requests", 0) >= step.pause_requests)
        )
        if not done or verdict != "pass":
            break
        row.step, row.step_started_at = row.step + 1, now
    row.updated_at = now
    if (row.status, row.step) != before:  # the controller moved it: on the audit log too
        moved = f"rollout {row.status} at step {row.step}"
        audit.append(session, actor=actor, action=via(moved, CONTROLLER),
                     resource=f"deployments/{name}/rollout", outcome=200)  # fmt: skip
    session.flush()
    return _entity(row, name)


def _degrade(
    session: Session, row: RolloutRow, deployment: DeploymentRow, reasons: list[str], actor: str
) -> None:
    why = "; ".join(reasons)
    stable = TrafficPolicy.model_validate_json(deployment.policy).stable
    services.set_policy(
        session, deployment.name, TrafficPolicy(stable=stable), actor, action="rollback",
        reason=via(f"rollout failed: {why}", CONTROLLER), status="degraded",
    )  # fmt: skip
    candidate = RolloutSpec.model_validate_json(row.spec).candidate
    services.record_event(
        session, deployment, "alert", actor, None, None,
        reason=via(f"rollout of v{candidate} rolled back: {why}", CONTROLLER),
    )  # fmt: skip
    row.status, row.message = "degraded", why


class RolloutController:
    """Ticks every running rollout every ``interval`` seconds on a daemon thread."""

    def __init__(self, store: Store, window: Window, *, interval: float = 1.0) -> None:
        self.store = store
        self.window = window
        self.interval = interval
        # An OpsloopError is the database away: the next tick tries again.
        self._loop = Periodic(self.tick_all, interval, "opsloop-rollouts", retry_on=(OpsloopError,))

    def start(self) -> RolloutController:
        self._loop.start()
        return self

    def tick_all(self) -> None:
        """Tick each running rollout acting as its creator (who started it, by hand or by a
        retraining loop acting for them)."""
        with self.store.read() as session:
            running = session.execute(
                select(RolloutRow.id, RolloutRow.created_by).where(RolloutRow.status == "running")
            ).all()
            authors = {author: author_principal(session, author) for _, author in running}
        for rollout_id, author in running:
            with self.store.write() as session:
                run_as(authors[author], tick, session, rollout_id, self.window)

    def stop(self) -> None:
        self._loop.stop(timeout=5)
