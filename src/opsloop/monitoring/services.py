"""Monitors: created once from a reference data version, checked on a schedule or on demand.

Creating a monitor reads the reference once. It profiles the features and, scored by the
deployment's stable model, the predictions (``prediction`` column). Where the reference holds
the target, it also records the model's quality on it and fits the CBPE calibration. All of this
is stored, so a check reads only its window of the prediction log.

A check (``run_monitor``):
- reads the window and turns it into metrics (``error_rate``, latencies, ``drift_share``,
  ``dataset_drift``, ``prediction_drift``, measured and estimated quality): the measuring
  half, :func:`~opsloop.monitoring.measure.measure`, which a cold command runs in a second
  process (:mod:`~opsloop.monitoring.measure_apart`);
- stores them as a monitor run, with the drift report (:func:`record_check`);
- judges the alert rules on them and delivers what opened.

Model loading and statistics happen between two short transactions, as promotion does. A
server logs a classifier's probabilities with each answer, so a check over such a window loads
no model at all; older rows fall back to loading the versions that answered them.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import Conflict
from opsloop.errors import NotFound
from opsloop.kernel.timeutil import now_ms
from opsloop.lineage import graph
from opsloop.monitoring import alerts
from opsloop.monitoring import references
from opsloop.monitoring.entities import Monitor
from opsloop.monitoring.entities import MonitorCreate
from opsloop.monitoring.entities import MonitorRun
from opsloop.monitoring.entities import MonitorSpec
from opsloop.monitoring.entities import monitor_from_row
from opsloop.monitoring.loop import start_loops
from opsloop.monitoring.measure import CheckInputs
from opsloop.monitoring.measure import Measured
from opsloop.monitoring.measure import measure
from opsloop.monitoring.references import MONITOR
from opsloop.monitoring.tables import AlertRow
from opsloop.monitoring.tables import MonitorRow
from opsloop.monitoring.tables import MonitorRunRow
from opsloop.store.columns import named_row
from opsloop.store.columns import newest_rows
from opsloop.store.ids import row_by_id

if TYPE_CHECKING:
    from opsloop.monitoring.ports import DataSource
    from opsloop.monitoring.ports import DeploymentSource
    from opsloop.monitoring.ports import ModelSource
    from opsloop.monitoring.ports import PredictionSource
    from opsloop.store.database import Store

__all__ = [
    "check_inputs",
    "create_monitor",
    "delete_monitor",
    "get_monitor",
    "list_monitors",
    "list_runs",
    "record_check",
    "run_monitor",
]


def _entity(row: MonitorRow) -> Monitor:
    return monitor_from_row(row, [c["name"] for c in json.loads(row.profile)["columns"]])


def _row(session: Session, name: str) -> MonitorRow:
    row: MonitorRow = named_row(session, MonitorRow, name, "monitor")
    return row


def get_monitor(session: Session, name: str) -> Monitor:
    return _entity(_row(session, name))


def list_monitors(session: Session, deployment: str | None = None) -> list[Monitor]:
    query = select(MonitorRow).order_by(MonitorRow.name)
    if deployment is not None:
        query = query.where(MonitorRow.deployment == deployment)
    return [_entity(r) for r in session.scalars(query)]


def delete_monitor(session: Session, name: str) -> None:
    session.delete(_row(session, name))


def create_monitor(
    store: Store, body: MonitorCreate, actor: str, *, models: ModelSource,
    deployments: DeploymentSource, data: DataSource,
) -> Monitor:  # fmt: skip
    """Profile the reference (features, the stable model's predictions) and store the monitor,
    with the reference as the first entry of its history (:mod:`.references`).

    ``deployments`` and ``data`` give the deployment and the reference data version, ``models``
    the stable version's model. ``NotFound`` for any of them, ``InvalidInput`` for a target or
    features the reference lacks, ``Conflict`` if a monitor of that name exists."""
    spec = body.spec
    deployment = deployments.get(body.deployment)
    stable = deployment.ref(deployment.policy.stable)
    profiled = references.profile_reference(spec, body.reference, stable, models=models, data=data)
    now = now_ms()
    with store.write() as session:
        if session.scalars(select(MonitorRow.id).where(MonitorRow.name == body.name)).first():
            raise Conflict(f"monitor {body.name!r} already exists")
        row = MonitorRow(
            id=uuid.uuid4().hex, name=body.name, deployment=body.deployment,
            spec=spec.model_dump_json(), profile="{}", baseline="{}", enabled=1,
            next_run_at=now, last_window_end=None, created_at=now, created_by=actor,
        )  # fmt: skip
        session.add(row)
        session.flush()
        graph.add_edge(
            session, (MONITOR, row.id),
            ("deployment", deployment_id(session, body.deployment)), "watches",
        )  # fmt: skip
        references.record_profiled(
            session, row, profiled, action="created", reason="the monitor was created",
            actor=actor,
        )  # fmt: skip
        return _entity(row)


def deployment_id(session: Session, name: str) -> str:
    from opsloop.serving.tables import DeploymentRow

    found = session.scalars(select(DeploymentRow.id).where(DeploymentRow.name == name)).first()
    if found is None:
        raise NotFound(f"deployment {name!r} does not exist")
    return found


def check_inputs(session: Session, name: str) -> CheckInputs:
    """What a check reads of monitor ``name`` (``NotFound`` if there is none)."""
    row = _row(session, name)
    spec = MonitorSpec.model_validate_json(row.spec)
    return CheckInputs.of(row.deployment, spec, row.baseline, row.profile, row.last_window_end)


def run_monitor(
    store: Store, log: PredictionSource, name: str, *, models: ModelSource,
    now: int | None = None,
) -> MonitorRun:  # fmt: skip
    """Check the monitor's window now: store the run, open or resolve alerts, deliver them.

    The window comes from ``log``; the model versions that answered it (for estimated quality)
    from ``models``. ``NotFound`` if there is no monitor ``name``."""
    now = now if now is not None else now_ms()
    with store.read() as session:
        inputs = check_inputs(session, name)
    measured = measure(inputs.measuring, log, models=models, now=now)
    return record_check(store, name, inputs, measured, now)


def record_check(
    store: Store, name: str, inputs: CheckInputs, measured: Measured | None, now: int
) -> MonitorRun:
    """The store's half of a check (:func:`~opsloop.monitoring.measure.measure` is the other):
    one transaction keeps the run, judges the alert rules, starts retraining loops and moves
    the monitor's window on; then what opened is delivered. ``measured`` None: the tumbling
    window is not complete, nothing is kept."""
    spec = inputs.spec
    if measured is None:
        note = f"the next tumbling {spec.window.by} window of {spec.window.size} is not complete"
        return MonitorRun(
            id="", monitor=name, started_at=now, window_start=None, window_end=None, rows=0,
            status="waiting", metrics={}, message=note,
        )  # fmt: skip
    metrics, report = dict(measured.metrics), measured.report
    run_id = uuid.uuid4().hex
    with store.write() as session:
        monitor = _row(session, name)
        rollbacks = _rollbacks_since(session, monitor, now)
        metrics["rollbacks"] = len(rollbacks)
        opened, holding, notes = alerts.evaluate_rules(
            session, monitor, alerts.with_rollback_rule(spec.rules), metrics, run_id, now
        )
        notes.extend(f"rolled back: {reason}" for reason in rollbacks)
        loops = start_loops(session, monitor, spec, opened)
        notes.extend(f"retraining started (loop {loop_id[:8]})" for loop_id in loops)
        status = "no_data" if report is None else ("alerting" if holding else "ok")
        message = "; ".join(n for n in [measured.note, *notes] if n) or None
        session.add(
            MonitorRunRow(
                id=run_id, monitor_id=monitor.id, started_at=now,
                window_start=measured.window_start, window_end=measured.window_end,
                rows=measured.rows, status=status, metrics=json.dumps(metrics),
                report=json.dumps(report or {}), message=message,
            )
        )  # fmt: skip
        if spec.window.mode == "tumbling":
            window_end = measured.window_end if spec.window.by == "time" else measured.last_ts
            monitor.last_window_end = window_end
        monitor.next_run_at = now + int(spec.every_seconds * 1000)
    for key, value in metrics.items():
        if isinstance(value, int | float):
            alerts.record_value((inputs.measuring.deployment, name, key), float(value))
    deliver_alerts(store, opened, spec)
    return MonitorRun(
        id=run_id, monitor=name, started_at=now, window_start=measured.window_start,
        window_end=measured.window_end, rows=measured.rows, status=status, metrics=metrics,
        message=message, alerts=opened, loops=loops, report=report,
    )  # fmt: skip


def deliver_alerts(store: Any, alert_ids: list[str], spec: MonitorSpec | None = None) -> None:
    """Deliver alerts to their rules' channels (outside any transaction) and keep the result."""
    for alert_id in alert_ids:
        with store.read() as session:
            alert_row = session.get(AlertRow, alert_id)
            if alert_row is None:
                continue
            monitor = session.get(MonitorRow, alert_row.monitor_id)
            assert monitor is not None
            rules = alerts.with_rollback_rule(
                (spec or MonitorSpec.model_validate_json(monitor.spec)).rules
            )
            alert = alerts.to_entity(alert_row, monitor.name)
        rule = next((r for r in rules if r.name == alert.rule), None)
        if rule is None:
            continue
        state = alerts.deliver(alert, rule)
        with store.write() as session:
            fresh = session.get(AlertRow, alert_id)
            if fresh is not None:
                fresh.deliveries = json.dumps(state)


def _rollbacks_since(session: Session, monitor: MonitorRow, now: int) -> list[str]:
    """Reasons of the deployment's rollbacks (rollout ``alert`` events) since the last check."""
    from opsloop.serving.tables import DeploymentEventRow
    from opsloop.serving.tables import DeploymentRow

    since = session.scalar(
        select(MonitorRunRow.started_at)
        .where(MonitorRunRow.monitor_id == monitor.id)
        .order_by(MonitorRunRow.started_at.desc())
        .limit(1)
    )
    since = since if since is not None else monitor.created_at
    rows = session.scalars(
        select(DeploymentEventRow.reason)
        .join(DeploymentRow, DeploymentRow.id == DeploymentEventRow.deployment_id)
        .where(DeploymentRow.name == monitor.deployment, DeploymentEventRow.action == "alert",
               DeploymentEventRow.at > since, DeploymentEventRow.at <= now)
        .order_by(DeploymentEventRow.at)
    )  # fmt: skip
    return [r or "rollout rolled back" for r in rows]


def list_runs(session: Session, name: str, limit: int = 20) -> list[MonitorRun]:
    monitor = _row(session, name)
    rows = newest_rows(
        session, MonitorRunRow.monitor_id, monitor.id, MonitorRunRow.started_at, limit
    )
    return [_stored_run(r, name) for r in rows]


def get_run(session: Session, run_id: str) -> MonitorRun:
    """One monitor run; ``run_id`` may be a unique prefix (6+ characters)."""
    row: MonitorRunRow = row_by_id(session, MonitorRunRow, run_id, "monitor run")
    monitor = session.get(MonitorRow, row.monitor_id)
    opened = session.scalars(select(AlertRow.id).where(AlertRow.run_id == row.id)).all()
    name = monitor.name if monitor else row.monitor_id
    return _stored_run(row, name, alerts=list(opened), report=json.loads(row.report) or None)


def _stored_run(row: MonitorRunRow, monitor: str, **more: Any) -> MonitorRun:
    """A stored check of ``monitor``; ``more`` adds what only one check's view holds (the
    alerts it opened, its drift report)."""
    return MonitorRun(
        id=row.id, monitor=monitor, started_at=row.started_at, window_start=row.window_start,
        window_end=row.window_end, rows=row.rows, status=row.status,
        metrics=json.loads(row.metrics), message=row.message, **more,
    )  # fmt: skip
