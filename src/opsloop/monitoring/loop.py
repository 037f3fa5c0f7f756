"""The loop: an alert retrains, the candidate is gated, canaried, and promoted or rolled back.

When a rule named in a monitor's ``retrain.on`` opens an alert, ``start_loops`` records a loop
run in the same transaction. The alert id is unique among loop runs, so an alert seen twice (two
schedulers, a retried check) starts one retraining. The retraining driver
(``opsloop.workflows.retraining.advance``) then walks the run:

``triggered``
    The labelled traffic, from the start of the window that raised the alert on, is exported
    as a data version (``export_dataset``).
``training``
    The pipeline runs with the policy's params plus that version, tagged with what triggered
    it. The model version it registered becomes the candidate.
``gating``
    The registry gate judges the candidate against the ``champion`` and moves ``candidate`` on
    a pass (``rejected`` otherwise).
``rolling_out``
    A progressive rollout on the deployment; the rollout controller judges its traffic.
``promoted`` or ``rolled_back``
    The rollout's outcome. ``failed`` means the pipeline failed or registered nothing.

A promotion ends the incident (``settle``): the monitor is re-baselined on the data the new
version was trained on (an entry of its reference history, reversible, see
:mod:`opsloop.monitoring.references`), and the alert that started the loop resolves with the
reason "resolved by vN", with the open alerts of the rules the retraining reacts to. The run's
stage stays ``promoted``; its history gains ``rebaselined`` and ``resolved``, and the monitor's
loop is ``settled`` until a check finds a rule holding again.

Every transition is kept in the run's history with its reason; ``opsloop loop status`` shows
where each deployment's loop stands, with the latest incident's timeline.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.kernel.identity import current_user
from opsloop.kernel.timeutil import now_ms
from opsloop.monitoring import alerts
from opsloop.monitoring import references
from opsloop.monitoring.entities import LoopRun
from opsloop.monitoring.entities import MonitorSpec
from opsloop.monitoring.entities import RetrainPolicy
from opsloop.monitoring.tables import AlertRow
from opsloop.monitoring.tables import LoopRunRow
from opsloop.monitoring.tables import MonitorRow
from opsloop.monitoring.tables import MonitorRunRow
from opsloop.store.ids import row_by_id

__all__ = [
    "ACTOR",
    "FINAL",
    "get_loop_run",
    "list_loop_runs",
    "loop_run_rows",
    "loop_status",
    "move_stage",
    "note",
    "pending_loops",
    "settle",
    "start_loops",
    "timeline",
]

FINAL = ("promoted", "rolled_back", "rejected", "failed")
ACTOR = "retraining-loop"


def _entity(row: LoopRunRow, monitor: str) -> LoopRun:
    return LoopRun(
        id=row.id, monitor=monitor, deployment=row.deployment, alert_id=row.alert_id,
        stage=row.stage, pipeline_run_id=row.pipeline_run_id, candidate=row.candidate,
        rollout_id=row.rollout_id, data_ref=row.data_ref, message=row.message,
        history=json.loads(row.history), created_at=row.created_at, updated_at=row.updated_at,
    )  # fmt: skip


def move_stage(row: LoopRunRow, stage: str, message: str) -> None:
    history = json.loads(row.history)
    history.append({"at": now_ms(), "stage": stage, "message": message})
    row.stage, row.message, row.updated_at, row.history = (
        stage,
        message,
        now_ms(),
        json.dumps(history),
    )


def note(row: LoopRunRow, event: str, message: str) -> None:
    """Add ``event`` to the run's history without moving its stage (what followed it)."""
    history = json.loads(row.history)
    history.append({"at": now_ms(), "stage": event, "message": message})
    row.history, row.updated_at = json.dumps(history), now_ms()


def loop_run_rows(
    session: Session, loop_id: str
) -> tuple[LoopRunRow, MonitorRow, RetrainPolicy | None]:
    """A loop run (its full id or a unique prefix), its monitor and the monitor's policy."""
    row: LoopRunRow = row_by_id(session, LoopRunRow, loop_id, "loop run")
    monitor = session.get(MonitorRow, row.monitor_id)
    assert monitor is not None
    return row, monitor, MonitorSpec.model_validate_json(monitor.spec).retrain


def settle(session: Session, loop_id: str, profiled: references.Profiled, reason: str) -> None:
    """End the incident of a promoted loop run: re-baseline its monitor on ``profiled`` (the
    data its candidate was trained on, profiled with it) and resolve its alert, and the open
    ones of the rules its retraining reacts to, "resolved by vN"; by whoever the caller acts
    as (the retraining driver acts as the loop's owner, the monitor's creator)."""
    row, monitor, policy = loop_run_rows(session, loop_id)
    entry = references.record_profiled(
        session, monitor, profiled, action="rebaselined", reason=reason, actor=current_user(),
        loop_id=row.id,
    )  # fmt: skip
    note(row, "rebaselined", f"{monitor.name} re-baselined on {entry.reference} with "
         f"{entry.model} (reference entry {entry.number}; undo: opsloop monitors revert "
         f"{monitor.name})")  # fmt: skip
    why = f"resolved by v{row.candidate}"
    closed = alerts.resolve_incident(
        session, monitor.id, row.alert_id, policy.on if policy else [], current_user(), why
    )
    names = ", ".join(f"{a.id[:8]} ({a.rule})" for a in closed) or "no alert was still open"
    note(row, "resolved", f"{why}: {names}")


EVENTS = {
    "training": "retrain run", "gating": "gate", "rolling_out": "canary",
    "promoted": "promotion", "rolled_back": "rollback", "rejected": "gate rejected",
    "failed": "failed", "rebaselined": "re-baseline", "rebaseline failed": "re-baseline failed",
    "resolved": "resolved",
}  # fmt: skip


def timeline(alert: AlertRow | None, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The incident told in order: the alert firing, then each step of its loop run."""
    events = []
    if alert is not None:
        events.append({"at": alert.first_at, "event": "alert fired", "message": alert.message})
    for step in history:
        if step["stage"] == "triggered":
            continue  # the alert firing, told above
        event = EVENTS.get(step["stage"], step["stage"])
        events.append({"at": step["at"], "event": event, "message": step["message"]})
    return events


def start_loops(
    session: Session, monitor: MonitorRow, spec: MonitorSpec, alert_ids: list[str]
) -> list[str]:
    """Loop runs for the alerts that the monitor's retraining policy reacts to."""
    if spec.retrain is None or not alert_ids:
        return []
    started = []
    for alert in session.scalars(select(AlertRow).where(AlertRow.id.in_(alert_ids))):
        if alert.rule not in spec.retrain.on:
            continue
        if session.scalars(select(LoopRunRow.id).where(LoopRunRow.alert_id == alert.id)).first():
            continue
        now = now_ms()
        row = LoopRunRow(
            id=uuid.uuid4().hex, monitor_id=monitor.id, deployment=monitor.deployment,
            alert_id=alert.id, stage="triggered", created_at=now, updated_at=now,
            message=f"alert {alert.rule}: {alert.message}", history="[]",
        )  # fmt: skip
        move_stage(row, "triggered", f"alert {alert.id[:8]} ({alert.rule}): {alert.message}")
        session.add(row)
        started.append(row.id)
    session.flush()
    return started


def get_loop_run(store: Any, loop_id: str) -> LoopRun:
    with store.read() as session:
        row: LoopRunRow = row_by_id(session, LoopRunRow, loop_id, "loop run")
        monitor = session.get(MonitorRow, row.monitor_id)
        return _entity(row, monitor.name if monitor else row.monitor_id)


def pending_loops(session: Session) -> list[str]:
    return list(session.scalars(select(LoopRunRow.id).where(LoopRunRow.stage.not_in(FINAL))))


def list_loop_runs(
    session: Session, deployment: str | None = None, limit: int = 20
) -> list[LoopRun]:
    query = select(LoopRunRow, MonitorRow.name).join(
        MonitorRow, MonitorRow.id == LoopRunRow.monitor_id
    )
    if deployment is not None:
        query = query.where(LoopRunRow.deployment == deployment)
    rows = session.execute(query.order_by(LoopRunRow.created_at.desc()).limit(limit)).all()
    return [_entity(row, name) for row, name in rows]


def loop_status(session: Session, deployment: str | None = None) -> list[dict[str, Any]]:
    """Per monitor: its latest check, its open alerts and its latest loop run, with reasons,
    and that run's incident ``timeline``. The stage is the loop run's while it runs, else
    ``alerting`` while an alert is open, ``settled`` after a promotion ended the incident (and
    no check since found a rule holding), ``watching`` otherwise."""
    query = select(MonitorRow).order_by(MonitorRow.deployment, MonitorRow.name)
    if deployment is not None:
        query = query.where(MonitorRow.deployment == deployment)
    out = []
    for monitor in session.scalars(query):
        last = session.scalars(
            select(MonitorRunRow).where(MonitorRunRow.monitor_id == monitor.id)
            .order_by(MonitorRunRow.started_at.desc()).limit(1)
        ).first()  # fmt: skip
        open_alerts = session.scalars(
            select(AlertRow).where(AlertRow.monitor_id == monitor.id, AlertRow.status != "resolved")
        ).all()
        loop = session.scalars(
            select(LoopRunRow).where(LoopRunRow.monitor_id == monitor.id)
            .order_by(LoopRunRow.created_at.desc()).limit(1)
        ).first()  # fmt: skip
        history = [] if loop is None else json.loads(loop.history)
        settled_at = next((h["at"] for h in history if h["stage"] == "resolved"), None)
        if loop is not None and loop.stage not in FINAL:
            stage = loop.stage
        elif open_alerts:
            stage = "alerting"
        elif loop is not None and loop.stage == "promoted" and settled_at is not None:
            # unless a check since then finds a rule holding again (no alert yet: cooling down)
            again = last is not None and last.started_at > settled_at and last.status == "alerting"
            stage = "alerting" if again else "settled"
        elif last is None:
            stage = "waiting for the first check"
        else:
            stage = "watching"
        out.append({
            "deployment": monitor.deployment, "monitor": monitor.name, "stage": stage,
            "last_check": None if last is None else {
                "at": last.started_at, "status": last.status, "rows": last.rows,
                "metrics": json.loads(last.metrics), "message": last.message,
            },
            "open_alerts": [{"id": a.id, "rule": a.rule, "severity": a.severity,
                             "status": a.status, "message": a.message} for a in open_alerts],
            "loop": None if loop is None else _entity(loop, monitor.name).model_dump(),
            "timeline": [] if loop is None else timeline(
                session.get(AlertRow, loop.alert_id), history
            ),
        })  # fmt: skip
    return out
