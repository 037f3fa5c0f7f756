"""Writing a run's data: params, tags and metric points, in batches.

``log_batch`` is the one write path for all three, used by the SDK's buffered logger, the REST
API and the CLI alike. It validates the whole batch before writing anything, then writes with
bulk statements: metric history with ``ON CONFLICT DO NOTHING`` (a retried batch is a no-op),
and the latest value per key with an upsert that only moves forward in (step, timestamp).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.store.columns import delete_tag_row
from opsloop.store.ids import FULL_ID_LENGTH
from opsloop.store.sql import SessionSql
from opsloop.store.sql import Sql
from opsloop.store.sql import in_list
from opsloop.tracking.entities import MetricBatch
from opsloop.tracking.entities import MetricHistory
from opsloop.tracking.run_records import MetricRowTuple
from opsloop.tracking.run_records import insert_metrics
from opsloop.tracking.run_records import metric_rows
from opsloop.tracking.runs import check_writable
from opsloop.tracking.runs import require_run_id
from opsloop.tracking.runs import require_writable_run
from opsloop.tracking.runs import run_state
from opsloop.tracking.tables import LatestMetricRow
from opsloop.tracking.tables import MetricRow
from opsloop.tracking.tables import RunTagRow
from opsloop.tracking.validation import check_key
from opsloop.tracking.validation import check_run_id_or_prefix
from opsloop.tracking.validation import clean_tags
from opsloop.tracking.validation import param_value_to_str

__all__ = [
    "MIN_PLOT_POINTS",
    "delete_tag",
    "get_metric_history",
    "list_metric_keys",
    "log_batch",
    "log_batch_plain",
]

MIN_PLOT_POINTS = 4


def log_batch(
    session: Session,
    run_id: str,
    *,
    metrics: MetricBatch | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    finished: bool = False,
) -> int:
    """Log metrics, params and tags to a run in one transaction; return the metric count.

    Tags may be set on a finished run (they annotate it); params and metrics need a RUNNING one,
    unless ``finished=True`` (MLflow's API: its clients log to ended runs, so ours may too).

    Raises:
        NotFound: The run does not exist.
        Conflict: The run is finished or deleted, or a param already has a different value
            (``details`` carries the key, the stored and the new value).
        InvalidInput: A malformed key, a non-finite metric, columns of unequal length.
    """
    batch = _Batch.checked(run_id, metrics, params, tags)
    if batch.needs_live_run:
        full_id = require_writable_run(session, run_id, _WHAT, finished=finished)
    else:
        full_id = require_run_id(session, run_id)
    return batch.write(SessionSql(session), full_id)


def log_batch_plain(
    sql: Sql,
    run_id: str,
    *,
    metrics: MetricBatch | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    finished: bool = False,
) -> int:
    """:func:`log_batch` in a plain write transaction (``Store.write_plain``: no ORM session),
    for a run named by its full id; checked and written alike, raising alike.

    Raises:
        ValueError: ``run_id`` is a prefix (its resolution needs :func:`log_batch`'s session).
    """
    if len(run_id) != FULL_ID_LENGTH:
        raise ValueError(f"log_batch_plain takes a full run id, not {run_id!r}")
    batch = _Batch.checked(run_id, metrics, params, tags)  # first, as log_batch checks it
    state = run_state(sql, check_run_id_or_prefix(run_id))
    full_id = check_writable(state, _WHAT, finished=finished) if batch.needs_live_run else run_id
    return batch.write(sql, full_id)


_WHAT = "params and metrics"


class _Batch:
    """A batch checked whole before anything is written: params as text, tags, metric rows."""

    def __init__(
        self, params: dict[str, str], tags: dict[str, str], rows: list[MetricRowTuple]
    ) -> None:
        self.params, self.tags, self.rows = params, tags, rows
        # params and metrics need a live (RUNNING, unless ``finished``) run; tags any run
        self.needs_live_run = bool(params or rows)

    @classmethod
    def checked(
        cls, run_id: str, metrics: MetricBatch | None, params: Mapping[str, Any] | None,
        tags: Mapping[str, Any] | None,
    ) -> _Batch:  # fmt: skip
        clean_params = {
            check_key(k, "param key"): param_value_to_str(k, v) for k, v in (params or {}).items()
        }
        checked_tags = clean_tags(tags)
        rows = metric_rows(run_id, metrics) if metrics else []
        return cls(clean_params, checked_tags, rows)

    def write(self, sql: Sql, run_id: str) -> int:
        """Write to the run ``run_id`` (its full id); the metric count."""
        rows = self.rows
        if rows and rows[0][0] != run_id:  # a prefix was given: the rows carry the full id
            rows = [(run_id, *row[1:]) for row in rows]
        if self.params:
            _insert_params(sql, run_id, self.params)
        if self.tags:
            sql.run_many(
                'INSERT INTO run_tags (run_id, "key", value) VALUES (:run_id, :key, :value)'
                ' ON CONFLICT (run_id, "key") DO UPDATE SET value = excluded.value',
                [{"run_id": run_id, "key": k, "value": v} for k, v in self.tags.items()],
            )
        if rows:
            insert_metrics(sql, rows)
        return len(rows)


def _insert_params(sql: Sql, run_id: str, params: dict[str, str]) -> None:
    """Insert the params the run lacks; one it has with another value is a ``Conflict``."""
    listed, keys = in_list("k", list(params))
    stored = dict(
        sql.rows(
            f'SELECT "key", value FROM params WHERE run_id = :run_id AND "key" IN {listed}',
            {"run_id": run_id, **keys},
        )
    )
    for key, value in params.items():
        if key in stored and stored[key] != value:
            raise Conflict(
                f"param {key!r} of run {run_id} is already {stored[key]!r}; params are immutable "
                f"(refused new value {value!r}); log a new key or start a new run",
                details={"key": key, "old_value": stored[key], "new_value": value},
            )
    new = [{"run_id": run_id, "key": k, "value": v} for k, v in params.items() if k not in stored]
    sql.run_many(
        'INSERT INTO params (run_id, "key", value) VALUES (:run_id, :key, :value)'
        " ON CONFLICT DO NOTHING",
        new,
    )


def get_metric_history(
    session: Session, run_id: str, key: str, max_points: int | None = None
) -> MetricHistory:
    """Every point of one metric, ordered by step then timestamp. Raises ``NotFound``.

    With ``max_points`` (at least 4) a longer history is thinned for plotting: the first and
    last points stay, and each of ``max_points // 2`` buckets keeps its minimum and maximum.
    """
    if max_points is not None and max_points < MIN_PLOT_POINTS:
        raise InvalidInput(f"max_points must be at least {MIN_PLOT_POINTS}, got {max_points}")
    run_id = require_run_id(session, run_id)
    points = session.execute(
        select(MetricRow.step, MetricRow.value, MetricRow.timestamp)
        .where(MetricRow.run_id == run_id, MetricRow.key == key)
        .order_by(MetricRow.step, MetricRow.timestamp)
    ).all()
    if not points:
        raise NotFound(f"run {run_id} has no metric {key!r}")
    if max_points is not None and len(points) > max_points:
        points = _thin(points, max_points)
    steps, values, timestamps = (list(col) for col in zip(*points, strict=True))
    return MetricHistory(run_id=run_id, key=key, steps=steps, values=values, timestamps=timestamps)


def _thin(points: Sequence[Any], max_points: int) -> list[Any]:
    """Keep the first, the last, and each bucket's min and max point, in order."""
    import numpy as np  # here, not at the top: every local command imports this module

    values = np.fromiter((p[1] for p in points), dtype=np.float64, count=len(points))
    buckets = max(1, (max_points - 2) // 2)
    edges = np.linspace(1, len(points) - 1, buckets + 1, dtype=np.int64)
    keep = {0, len(points) - 1}
    for lo, hi in itertools.pairwise(edges):
        if hi > lo:
            chunk = values[lo:hi]
            keep.add(lo + int(np.argmin(chunk)))
            keep.add(lo + int(np.argmax(chunk)))
    return [points[i] for i in sorted(keep)]


def list_metric_keys(session: Session, run_id: str) -> list[str]:
    """The keys of every metric the run has logged, sorted."""
    run_id = require_run_id(session, run_id)
    return list(
        session.scalars(
            select(LatestMetricRow.key)
            .where(LatestMetricRow.run_id == run_id)
            .order_by(LatestMetricRow.key)
        )
    )


def delete_tag(session: Session, run_id: str, key: str) -> None:
    """Remove one tag from a run. Raises ``NotFound`` when it is not set."""
    run_id = require_run_id(session, run_id)
    if not delete_tag_row(session, RunTagRow.run_id, run_id, key):
        raise NotFound(f"run {run_id} has no tag {key!r}")
