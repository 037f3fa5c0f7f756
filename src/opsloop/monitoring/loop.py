"""The loop: an alert retrains, the candidate is gated, canaried, and promoted or rolled back.

When a rule named in a monitor's ``retrain.on`` opens an alert, ``start_loops`` records a loop
run in the same transaction. The alert id is unique among loop runs, so an alert seen twice
(two schedulers, a retried check) starts one retraining. ``advance`` then walks the run:

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
import tempfile
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import NotFound, OpsloopError
from opsloop.kernel.timeutil import now_ms
from opsloop.lineage import graph
from opsloop.monitoring.entities import LoopRun, MonitorSpec, RetrainPolicy
from opsloop.monitoring.tables import AlertRow, LoopRunRow, MonitorRow, MonitorRunRow

__all__ = ["FINAL", "advance", "list_loop_runs", "loop_status", "pending_loops", "start_loops"]

FINAL = ("promoted", "rolled_back", "rejected", "failed")
ACTOR = "retraining-loop"


def _entity(row: LoopRunRow, monitor: str) -> LoopRun:
    return LoopRun(
        id=row.id, monitor=monitor, deployment=row.deployment, alert_id=row.alert_id,
        stage=row.stage, pipeline_run_id=row.pipeline_run_id, candidate=row.candidate,
        rollout_id=row.rollout_id, data_ref=row.data_ref, message=row.message,
        history=json.loads(row.history), created_at=row.created_at, updated_at=row.updated_at,
    )  # fmt: skip


def _move(row: LoopRunRow, stage: str, message: str) -> None:
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
        _move(row, "triggered", f"alert {alert.id[:8]} ({alert.rule}): {alert.message}")
        session.add(row)
        started.append(row.id)
    session.flush()
    return started


def _load(store: Any, loop_id: str) -> tuple[LoopRunRow, MonitorRow, RetrainPolicy]:
    with store.read() as session:
        row = session.get(LoopRunRow, loop_id)
        if row is None:
            raise NotFound(f"loop run {loop_id!r} does not exist")
        monitor = session.get(MonitorRow, row.monitor_id)
        assert monitor is not None
        policy = MonitorSpec.model_validate_json(monitor.spec).retrain
        session.expunge_all()
    assert policy is not None
    return row, monitor, policy


def _save(store: Any, loop_id: str, stage: str, message: str, **fields: Any) -> None:
    with store.write() as session:
        row = session.get(LoopRunRow, loop_id)
        assert row is not None
        for key, value in fields.items():
            setattr(row, key, value)
        _move(row, stage, message)


def _export(client: Any, log: Any, monitor: MonitorRow, policy: RetrainPolicy) -> str | None:
    """The deployment's labelled traffic as the next version of ``policy.export_dataset``."""
    from opsloop.monitoring.windows import explode

    if policy.export_dataset is None:
        return None
    window = explode(log.requests(monitor.deployment), None, None)
    target = MonitorSpec.model_validate_json(monitor.spec).target or "label"
    frame = window.features
    frame[target] = window.labels
    frame = frame[frame[target].notna()]
    if frame.empty:
        raise OpsloopError(
            f"deployment {monitor.deployment!r} has no labelled traffic to retrain on"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{policy.export_dataset}.parquet"
        frame.reset_index(drop=True).to_parquet(path)
        added = client.data.add(
            str(path), name=policy.export_dataset,
            message=f"labelled traffic of {monitor.deployment} ({len(frame)} rows)",
        )  # fmt: skip
    return str(added.version.ref)


def _train(
    client: Any, store: Any, row: LoopRunRow, policy: RetrainPolicy, data_ref: str | None
) -> tuple[str, int]:
    """Run the pipeline; its run id and the model version it registered."""
    from opsloop.kernel.step_context import STEP_RUN_TAG
    from opsloop.pipelines.cli import load_pipeline

    pipeline = load_pipeline(policy.pipeline)
    params = dict(policy.params)
    if data_ref is not None:
        params[policy.data_param] = data_ref
    tags = {"opsloop.trigger": f"alert:{row.alert_id}", "opsloop.loop": row.id}
    result = pipeline.run(client=client, tags=tags, **params)
    with store.write() as session:
        graph.add_edge(session, ("alert", row.alert_id), (graph.RUN, result.run_id), "triggered")
    runs = {result.run_id, *(s.run_id for s in result.steps)}
    model = client.deployments.get(row.deployment).model
    made = [
        v
        for v in client.models.versions(model, max_results=1000).items
        if v.run_id in runs or v.tags.get(STEP_RUN_TAG) in runs
    ]
    if not made:
        raise OpsloopError(
            f"pipeline run {result.run_id[:8]} registered no version of {model!r} "
            "(a registering step must not be cached: @step(cache=False))"
        )
    return result.run_id, max(v.number for v in made)


def advance(
    client: Any, store: Any, log: Any, loop_id: str, *, tick_rollout: bool = True
) -> LoopRun:
    """Walk a loop run as far as it can go now (see the module docstring)."""
    from opsloop.evaluation.promotion import promote

    row, monitor, policy = _load(store, loop_id)
    try:
        if row.stage == "triggered":
            data_ref = _export(client, log, monitor, policy)
            _save(store, loop_id, "training", f"running {policy.pipeline}", data_ref=data_ref)
            run_id, candidate = _train(client, store, row, policy, data_ref)
            _save(store, loop_id, "gating", f"pipeline run {run_id[:8]} registered v{candidate}",
                  pipeline_run_id=run_id, candidate=candidate)  # fmt: skip
            row, monitor, policy = _load(store, loop_id)
        if row.stage == "gating":
            model = client.deployments.get(row.deployment).model
            ref = f"{model}@{row.candidate}"
            result = promote(
                client.models._backend.promotions, ref, "candidate", created_by=ACTOR,
                policy=policy.gate_policy, baseline="champion",
                reason=f"retraining loop {row.id[:8]}",
            )  # fmt: skip
            if not result.passed:
                failed = [
                    r for r in (result.event.verdict or {}).get("rules", []) if not r.get("passed")
                ]
                why = (
                    "; ".join(str(r.get("detail") or r.get("rule")) for r in failed)
                    or "gate failed"
                )
                _save(store, loop_id, "rejected", f"v{row.candidate} failed the gate: {why}")
                return get_loop_run(store, loop_id)
            rollout = client.deployments.rollout(
                ref, name=row.deployment, steps=policy.rollout_steps, checks=policy.rollout_checks,
                max_inconclusive_seconds=policy.max_inconclusive_seconds,
            )  # fmt: skip
            started = f"v{row.candidate} passed the gate; canary started"
            _save(store, loop_id, "rolling_out", started, rollout_id=rollout.id)
            row, monitor, policy = _load(store, loop_id)
        if row.stage == "rolling_out":
            rollout = (
                client.deployments.advance if tick_rollout else client.deployments.rollout_status
            )(row.deployment)
            if rollout.id != row.rollout_id:
                _save(store, loop_id, "failed", "the rollout was replaced by another one")
            elif rollout.status == "succeeded":
                _save(store, loop_id, "promoted", f"the canary passed: {rollout.message}")
            elif rollout.status in ("degraded", "aborted"):
                _save(
                    store,
                    loop_id,
                    "rolled_back",
                    f"v{row.candidate} rolled back: {rollout.message}",
                )
    except OpsloopError as exc:
        _save(store, loop_id, "failed", exc.message)
    except Exception as exc:  # a user pipeline may raise anything: keep it on the record
        _save(store, loop_id, "failed", f"{type(exc).__name__}: {exc}")
    return get_loop_run(store, loop_id)


def get_loop_run(store: Any, loop_id: str) -> LoopRun:
    with store.read() as session:
        row = session.get(LoopRunRow, loop_id)
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
