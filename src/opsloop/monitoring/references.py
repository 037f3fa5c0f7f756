"""A monitor's references: what it compares traffic to, kept as a history that can be undone.

A monitor is created against a reference data version (entry 1, ``created``). When the loop
promotes a retrained version, the traffic the old reference described is gone for good: the
monitor is re-baselined on the data the new version was trained on, profiled with the new
version's predictions (entry 2, ``rebaselined``), or the shift that started the incident would
alert forever. A re-baseline is a judgement, so it is recorded (who, why, when, which loop run)
and reversible: ``revert`` copies an earlier entry back as a new one (``reverted``), keeping
every entry, so a revert can itself be reverted.

Each entry keeps its own profile and baseline, and the monitor row holds a copy of the current
one's, so a check reads a single row and a revert reads no data and loads no model.

Profiling (reading the data, scoring it) happens outside any transaction, as in
``services.create_monitor``; :func:`record` is the short write.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.timeutil import now_ms
from opsloop.lineage import graph
from opsloop.monitoring import quality
from opsloop.monitoring.entities import MonitorReference
from opsloop.monitoring.entities import MonitorSpec
from opsloop.monitoring.measure import PREDICTION
from opsloop.monitoring.measure import positive_scores
from opsloop.monitoring.profiles import profile_frame
from opsloop.monitoring.tables import MonitorReferenceRow
from opsloop.monitoring.tables import MonitorRow
from opsloop.store.columns import named_row

if TYPE_CHECKING:
    from opsloop.monitoring.ports import DataSource
    from opsloop.monitoring.ports import DeploymentSource
    from opsloop.monitoring.ports import ModelSource
    from opsloop.store.database import Store

__all__ = [
    "Profiled",
    "list_references",
    "profile_reference",
    "rebaseline",
    "record",
    "revert",
]

MONITOR = "monitor"


@dataclass(frozen=True)
class Profiled:
    """A reference data version profiled with one model version, ready to be recorded."""

    reference: str  # NAME@N
    version_id: str  # the data version's id (the lineage node)
    profile: dict[str, Any]
    baseline: dict[str, Any]


def profile_reference(
    spec: MonitorSpec, reference: str, model_ref: str, *, models: ModelSource, data: DataSource
) -> Profiled:
    """Profile the features of ``reference`` and ``model_ref``'s predictions on it; where it
    holds the target, the model's quality there and the CBPE calibration.

    ``NotFound`` for a data or model version that does not exist, ``InvalidInput`` for a
    target or features the reference lacks."""
    reference_data = data.get(reference)
    frame = reference_data.to_pandas()
    if spec.target is not None and spec.target not in frame.columns:
        raise InvalidInput(f"target {spec.target!r} is not a column of {reference}")
    features = spec.features or [c for c in frame.columns if c != spec.target]
    absent = [c for c in features if c not in frame.columns]
    if absent:
        raise InvalidInput(f"features not in {reference}: {', '.join(absent)}")
    model = models.load(model_ref)
    task = models.version(model_ref).task or (
        "classification" if model.classes is not None else "regression"
    )
    predictions = list(model.predict(frame[features]))
    table = frame[features].copy()
    table[PREDICTION] = predictions
    kinds = {PREDICTION: "categorical" if task == "classification" else "numeric"}
    profile = profile_frame(table, kinds)  # type: ignore[arg-type]
    baseline: dict[str, Any] = {"reference": reference_data.ref, "model": model_ref, "task": task}
    if spec.target is not None:
        labels = frame[spec.target].tolist()
        scores = positive_scores(model, frame[features])
        baseline["metrics"] = quality.measured(predictions, labels, task, scores)
        if scores is not None:
            truth = np.array([str(v) == str(model.classes[1]) for v in labels], dtype=float)
            baseline["calibration"] = quality.calibration(scores, truth)
    return Profiled(
        str(reference_data.ref), reference_data.info.version_id, profile.to_dict(), baseline
    )


def _entity(row: MonitorReferenceRow, monitor: str, current: int) -> MonitorReference:
    return MonitorReference(
        number=row.number, monitor=monitor, action=row.action,  # type: ignore[arg-type]
        reference=row.reference, model=row.model, reason=row.reason, loop_id=row.loop_id,
        metrics=json.loads(row.baseline).get("metrics") or {}, current=row.number == current,
        created_at=row.created_at, created_by=row.created_by,
    )  # fmt: skip


def _current(session: Session, monitor_id: str) -> int:
    return int(
        session.scalar(
            select(func.max(MonitorReferenceRow.number)).where(
                MonitorReferenceRow.monitor_id == monitor_id
            )
        )
        or 0
    )


def record(
    session: Session, monitor: MonitorRow, *, profile: str, baseline: str, action: str,
    reason: str, actor: str, loop_id: str | None = None,
) -> MonitorReference:  # fmt: skip
    """Make ``profile`` and ``baseline`` (JSON) the monitor's current reference, as the next
    history entry."""
    number = _current(session, monitor.id) + 1
    info = json.loads(baseline)
    row = MonitorReferenceRow(
        id=uuid.uuid4().hex, monitor_id=monitor.id, number=number, action=action,
        reference=info["reference"], model=info.get("model", ""), reason=reason,
        loop_id=loop_id, profile=profile, baseline=baseline, created_at=now_ms(),
        created_by=actor,
    )  # fmt: skip
    session.add(row)
    monitor.profile, monitor.baseline = profile, baseline
    session.flush()
    return _entity(row, monitor.name, number)


def record_profiled(
    session: Session, monitor: MonitorRow, profiled: Profiled, *, action: str, reason: str,
    actor: str, loop_id: str | None = None,
) -> MonitorReference:  # fmt: skip
    """:func:`record` a freshly profiled reference, and its lineage (the monitor consumed it)."""
    entry = record(
        session, monitor, profile=json.dumps(profiled.profile),
        baseline=json.dumps(profiled.baseline), action=action, reason=reason, actor=actor,
        loop_id=loop_id,
    )  # fmt: skip
    graph.add_edge(
        session, (MONITOR, monitor.id), (graph.DATASET_VERSION, profiled.version_id), "consumed"
    )
    return entry


def rebaseline(
    store: Store, name: str, reference: str, actor: str, reason: str | None = None, *,
    models: ModelSource, deployments: DeploymentSource, data: DataSource,
) -> MonitorReference:  # fmt: skip
    """Re-baseline the monitor ``name`` by hand on ``reference``, profiled with its
    deployment's stable model. ``NotFound`` for the monitor, the deployment or the data."""
    with store.read() as session:
        row = named_row(session, MonitorRow, name, "monitor")
        spec = MonitorSpec.model_validate_json(row.spec)
        deployment_name = row.deployment
    deployment = deployments.get(deployment_name)
    model_ref = deployment.ref(deployment.policy.stable)
    profiled = profile_reference(spec, reference, model_ref, models=models, data=data)
    with store.write() as session:
        monitor = named_row(session, MonitorRow, name, "monitor")
        why = reason or f"re-baselined by hand on {profiled.reference} with {model_ref}"
        return record_profiled(
            session, monitor, profiled, action="rebaselined", reason=why, actor=actor
        )


def list_references(session: Session, name: str) -> list[MonitorReference]:
    """The monitor's reference history, newest first. ``NotFound`` if there is no monitor."""
    monitor = named_row(session, MonitorRow, name, "monitor")
    rows = session.scalars(
        select(MonitorReferenceRow)
        .where(MonitorReferenceRow.monitor_id == monitor.id)
        .order_by(MonitorReferenceRow.number.desc())
    ).all()
    current = rows[0].number if rows else 0
    return [_entity(r, name, current) for r in rows]


def revert(
    session: Session, name: str, actor: str, to: int | None = None, reason: str | None = None
) -> MonitorReference:
    """Go back to history entry ``to`` (default: the one before the current one), as a new
    entry. ``NotFound`` for the monitor or the entry, ``InvalidInput`` when there is nothing
    to go back to or ``to`` is the current entry."""
    monitor = named_row(session, MonitorRow, name, "monitor")
    current = _current(session, monitor.id)
    target = current - 1 if to is None else to
    if to is None and target < 1:
        raise InvalidInput(f"monitor {name!r} has only one reference: nothing to revert to")
    if target == current:
        raise InvalidInput(f"entry {target} is already the current reference of {name!r}")
    row = session.scalars(
        select(MonitorReferenceRow).where(
            MonitorReferenceRow.monitor_id == monitor.id, MonitorReferenceRow.number == target
        )
    ).first()
    if row is None:
        raise NotFound(f"monitor {name!r} has no reference entry {target} (1 to {current})")
    why = reason or f"reverted to entry {target} ({row.reference} with {row.model})"
    return record(
        session, monitor, profile=row.profile, baseline=row.baseline, action="reverted",
        reason=why, actor=actor,
    )  # fmt: skip
