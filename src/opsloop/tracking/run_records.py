"""Runs in bulk, in plain SQL: many new runs written whole, a few tags of many runs read back.

``runs.create_run`` and ``run_data.log_batch`` write one run per call through the ORM, which
costs about a millisecond a call; a pipeline's write-behind journal writes the step runs of
many steps at a time, so it hands them here as records and they go in with one bulk insert per
table. The same checks apply as on the one-at-a-time path (names, keys, values, an active
experiment, an existing parent), made before anything is written.

Everything here runs through a :class:`~opsloop.store.sql.Sql`, so it works inside an ORM
session's transaction and equally in a process that never imports SQLAlchemy (a fully cached
pipeline run, :mod:`opsloop.pipelines.cached_run`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from itertools import repeat
from typing import Any

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.identity import current_user
from opsloop.store.blobs import BlobStore
from opsloop.store.blobs import check_digest
from opsloop.store.sql import Sql
from opsloop.store.sql import in_list
from opsloop.tracking.entities import ArtifactSpec
from opsloop.tracking.entities import MetricBatch
from opsloop.tracking.entities import RunStatus
from opsloop.tracking.validation import check_artifact_path
from opsloop.tracking.validation import check_key
from opsloop.tracking.validation import check_metric_value
from opsloop.tracking.validation import check_name
from opsloop.tracking.validation import check_run_id
from opsloop.tracking.validation import param_value_to_str
from opsloop.tracking.validation import tag_value_to_str

__all__ = [
    "NewRun", "insert_metrics", "insert_runs", "metric_rows", "recent_run_tags",
]  # fmt: skip

_IN_CHUNK = 500  # bound an IN list
_METRIC_CHUNK = 20_000

MetricRowTuple = tuple[str, str, int, int, float]  # run_id, key, step, timestamp, value


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


def insert_runs(sql: Sql, blobs: BlobStore, records: list[NewRun]) -> None:
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
            metrics += metric_rows(r.run_id, r.metrics)
        files += [{"run_id": r.run_id, "path": check_artifact_path(a.path),
                   "digest": check_digest(a.digest), "size": a.size,
                   "created_at": r.end_time or r.start_time} for a in r.artifacts]  # fmt: skip
    for experiment_id in {r.experiment_id for r in records}:
        _require_active_experiment(sql, experiment_id)
    ours = {r.run_id for r in records}
    parents = sorted({r.parent_run_id for r in records} - ours - {None})
    if parents:
        listed, bound = in_list("id", parents)
        found = {row[0] for row in sql.rows(f"SELECT id FROM runs WHERE id IN {listed}", bound)}
        if set(parents) - found:
            raise NotFound(f"parent run {sorted(set(parents) - found)[0]} does not exist")
    missing = blobs.missing(f["digest"] for f in files)
    if missing:
        raise InvalidInput(f"{len(missing)} blob(s) are not in the blob store: {missing[:3]}")
    sql.run_many(
        "INSERT INTO runs (id, experiment_id, name, status, start_time, end_time,"
        " parent_run_id, user_id, lifecycle_stage) VALUES (:id, :experiment_id, :name, :status,"
        " :start_time, :end_time, :parent_run_id, :user_id, :lifecycle_stage)",
        runs,
    )
    sql.run_many('INSERT INTO run_tags (run_id, "key", value) VALUES (:run_id, :key, :value)',
                 tags)  # fmt: skip
    sql.run_many('INSERT INTO params (run_id, "key", value) VALUES (:run_id, :key, :value)',
                 params)  # fmt: skip
    if metrics:
        insert_metrics(sql, metrics)
    sql.run_many(
        "INSERT INTO artifacts (run_id, path, digest, size, created_at)"
        " VALUES (:run_id, :path, :digest, :size, :created_at)",
        files,
    )


def _require_active_experiment(sql: Sql, experiment_id: str) -> None:
    found = sql.rows("SELECT name, lifecycle_stage FROM experiments WHERE id = :id",
                     {"id": experiment_id})  # fmt: skip
    if not found:
        raise NotFound(f"experiment {experiment_id!r} does not exist")
    if found[0][1] != "active":
        raise Conflict(f"experiment {found[0][0]!r} is deleted; restore it to add runs")


def metric_rows(run_id: str, batch: MetricBatch) -> list[MetricRowTuple]:
    """Validated history rows as tuples (run_id, key, step, timestamp, value)."""
    rows: list[MetricRowTuple] = []
    for key, series in batch.series.items():
        check_key(key, "metric key")
        n = len(series.values)
        if len(series.steps) != n or len(series.timestamps) != n:
            raise InvalidInput(
                f"metric {key!r}: values, steps and timestamps must have equal lengths "
                f"(got {n}, {len(series.steps)}, {len(series.timestamps)})"
            )
        values = series.values
        if not all(map(math.isfinite, values)):  # one C-level pass; the culprit on failure
            for value in values:
                check_metric_value(key, value)
        rows.extend(zip(repeat(run_id, n), repeat(key, n), series.steps, series.timestamps,
                        values, strict=True))  # fmt: skip
    return rows


def insert_metrics(sql: Sql, rows: list[MetricRowTuple]) -> None:
    """Metric history (a point already stored is left as it is, so a retried batch is a
    no-op), then the latest value per (run, key), which only moves forward in (step,
    timestamp)."""
    for start in range(0, len(rows), _METRIC_CHUNK):  # tuples as they are: the cheapest way
        sql.run_many(
            'INSERT INTO metrics (run_id, "key", step, timestamp, value)'
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            rows[start : start + _METRIC_CHUNK],
        )
    latest: dict[tuple[str, str], MetricRowTuple] = {}  # by (run, key)
    for row in rows:
        best = latest.get(row[:2])
        if best is None or (row[2], row[3], row[4]) >= (best[2], best[3], best[4]):
            latest[row[:2]] = row
    sql.run_many(
        'INSERT INTO latest_metrics (run_id, "key", value, step, timestamp)'
        " VALUES (:run_id, :key, :value, :step, :timestamp)"
        ' ON CONFLICT (run_id, "key") DO UPDATE SET value = excluded.value,'
        " step = excluded.step, timestamp = excluded.timestamp"
        " WHERE (excluded.step, excluded.timestamp)"
        " >= (latest_metrics.step, latest_metrics.timestamp)",
        [{"run_id": r[0], "key": r[1], "step": r[2], "timestamp": r[3], "value": r[4]}
         for r in latest.values()],
    )  # fmt: skip


def recent_run_tags(
    sql: Sql, experiment_id: str, keys: Sequence[str], *, nested: bool, limit: int
) -> tuple[list[tuple[str, dict[str, str]]], bool]:
    """The tags ``keys`` of an experiment's latest FINISHED runs (nested ones, or top-level
    ones), newest first, and whether that is all of them: a few tags of many runs without
    building whole runs (a pipeline's cache index reads its step runs this way)."""
    parent = "IS NOT NULL" if nested else "IS NULL"
    ids = [row[0] for row in sql.rows(
        "SELECT id FROM runs WHERE experiment_id = :experiment AND status = 'FINISHED'"
        f" AND lifecycle_stage = 'active' AND parent_run_id {parent}"
        " ORDER BY start_time DESC, id LIMIT :limit",
        {"experiment": experiment_id, "limit": limit + 1},
    )]  # fmt: skip
    complete = len(ids) <= limit
    ids = ids[:limit]
    found: dict[str, dict[str, str]] = {run_id: {} for run_id in ids}
    wanted, key_params = in_list("k", list(keys))
    for start in range(0, len(ids), _IN_CHUNK):
        listed, id_params = in_list("r", ids[start : start + _IN_CHUNK])
        rows = sql.rows(
            f'SELECT run_id, "key", value FROM run_tags WHERE run_id IN {listed}'
            f' AND "key" IN {wanted}',
            {**id_params, **key_params},
        )
        for run_id, key, value in rows:
            found[run_id][key] = value
    return list(found.items()), complete
