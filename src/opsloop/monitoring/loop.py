"""The loop: an alert retrains, the candidate is gated, canaried, and promoted or rolled back.

When a rule named in a monitor's ``retrain.on`` opens an alert, ``start_loops`` records a loop
run in the same transaction. The alert id is unique among loop runs, so an alert seen twice (two
schedulers, a retried check) starts one retraining. The retraining driver
(``opsloop.workflows.retraining.advance``) then walks the run:

``triggered``
    The labelled traffic is exported as a data version (``export_dataset``).
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

Every transition is kept in the run's history with its reason; ``opsloop loop status`` shows
where each deployment's loop stands.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import NotFound
from opsloop.kernel.timeutil import now_ms
from opsloop.monitoring.entities import LoopRun, MonitorSpec
from opsloop.monitoring.tables import AlertRow, LoopRunRow, MonitorRow, MonitorRunRow
from opsloop.store.ids import resolve_id

__all__ = [
    "ACTOR",
    "FINAL",
    "get_loop_run",
    "list_loop_runs",
    "loop_status",
    "move_stage",
    "pending_loops",
    "start_loops",
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
        row = session.get(LoopRunRow, resolve_id(session, LoopRunRow.id, loop_id, "loop run"))
        if row is None:
            raise NotFound(f"loop run {loop_id!r} does not exist")
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
    """Per monitor: its latest check, its open alerts and its latest loop run, with reasons."""
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
        if loop is not None and loop.stage not in FINAL:
            stage = loop.stage
        elif open_alerts:
            stage = "alerting"
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
        })  # fmt: skip
    return out
