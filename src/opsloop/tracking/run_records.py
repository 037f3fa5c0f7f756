"""Writing many new runs at once, each whole: its row, tags, params, metrics and artifacts.

``runs.create_run`` and ``run_data.log_batch`` write one run per call through the ORM, which
costs about a millisecond a call; a pipeline's write-behind journal writes the step runs of
many steps at a time, so it hands them here as records and they go in with one bulk insert per
table. The same checks apply as on the one-at-a-time path (names, keys, values, an active
experiment, an existing parent), made before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput, NotFound
from opsloop.store.blobs import BlobStore, check_digest
from opsloop.tracking.entities import ArtifactSpec, MetricBatch, RunStatus
from opsloop.tracking.experiments import require_active_experiment
from opsloop.tracking.run_data import _insert_metrics, _metric_rows
from opsloop.tracking.runs import current_user
from opsloop.tracking.tables import ArtifactRow, ParamRow, RunRow, RunTagRow
from opsloop.tracking.validation import (
    check_artifact_path,
    check_key,
    check_name,
    check_run_id,
    param_value_to_str,
    tag_value_to_str,
)

__all__ = ["NewRun", "insert_runs"]


@dataclass
class NewRun:
    """A run to insert whole; ``status`` RUNNING leaves it open, a terminal one ends it."""

    run_id: str
    experiment_id: str
    name: str
    start_time: int
    parent_run_id: str | None = None
    status: str = RunStatus.RUNNING.value
    end_time: int | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: MetricBatch | None = None
    artifacts: list[ArtifactSpec] = field(default_factory=list)


def insert_runs(session: Session, blobs: BlobStore, records: list[NewRun]) -> None:
    """Insert ``records`` (runs that do not exist yet) with one statement per table.

    Raises:
        NotFound: An experiment or a parent run that does not exist.
        Conflict: A deleted experiment.
        InvalidInput: A malformed id, name, key or value; an artifact whose blob is missing.
    """
    if not records:
        return
    user = current_user()
    runs, tags, params, metrics, files = [], [], [], [], []
    for r in records:
        check_run_id(r.run_id)
        runs.append({
            "id": r.run_id, "experiment_id": r.experiment_id, "name": check_name(r.name, "run"),
            "status": RunStatus(r.status).value, "start_time": r.start_time,
            "end_time": r.end_time, "parent_run_id": r.parent_run_id, "user_id": user,
            "lifecycle_stage": "active",
        })  # fmt: skip
        tags += [{"run_id": r.run_id, "key": check_key(k, "tag key"),
                  "value": tag_value_to_str(k, v)} for k, v in r.tags.items()]  # fmt: skip
        params += [{"run_id": r.run_id, "key": check_key(k, "param key"),
                    "value": param_value_to_str(k, v)} for k, v in r.params.items()]  # fmt: skip
        if r.metrics is not None:
            metrics += _metric_rows(r.run_id, r.metrics)
        files += [{"run_id": r.run_id, "path": check_artifact_path(a.path),
                   "digest": check_digest(a.digest), "size": a.size,
                   "created_at": r.end_time or r.start_time} for a in r.artifacts]  # fmt: skip
    for experiment_id in {r.experiment_id for r in records}:
        require_active_experiment(session, experiment_id)
    ours = {r.run_id for r in records}
    parents = {r.parent_run_id for r in records if r.parent_run_id and r.parent_run_id not in ours}
    if parents:
        found = set(session.scalars(select(RunRow.id).where(RunRow.id.in_(parents))))
        if parents - found:
            raise NotFound(f"parent run {sorted(parents - found)[0]} does not exist")
    missing = blobs.missing(f["digest"] for f in files)
    if missing:
        raise InvalidInput(f"{len(missing)} blob(s) are not in the blob store: {missing[:3]}")
    session.execute(insert(RunRow.__table__), runs)
    if tags:
        session.execute(insert(RunTagRow.__table__), tags)
    if params:
        session.execute(insert(ParamRow.__table__), params)
    if metrics:
        _insert_metrics(session, metrics)
    if files:
        session.execute(insert(ArtifactRow.__table__), files)
