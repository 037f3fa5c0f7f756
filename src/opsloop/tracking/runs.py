"""Run services: lifecycle (create, update, delete, restore) and reading runs back.

Logging params, tags and metrics is in :mod:`opsloop.tracking.run_data`; search in
:mod:`opsloop.tracking.search`. Every function takes a session and never commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.identity import current_user
from opsloop.kernel.timeutil import now_ms
from opsloop.store.ids import resolve_id
from opsloop.store.rows import from_row
from opsloop.store.sql import SessionSql
from opsloop.store.sql import Sql
from opsloop.tracking.entities import Run
from opsloop.tracking.entities import RunData
from opsloop.tracking.entities import RunInfo
from opsloop.tracking.entities import RunStatus
from opsloop.tracking.experiments import require_active_experiment
from opsloop.tracking.names import random_run_name
from opsloop.tracking.tables import LatestMetricRow
from opsloop.tracking.tables import ParamRow
from opsloop.tracking.tables import RunRow
from opsloop.tracking.tables import RunTagRow
from opsloop.tracking.validation import check_name
from opsloop.tracking.validation import check_run_id
from opsloop.tracking.validation import check_run_id_or_prefix
from opsloop.tracking.validation import clean_tags

__all__ = [
    "check_writable",
    "create_run",
    "delete_run",
    "get_run",
    "get_runs",
    "require_run",
    "require_run_id",
    "require_writable_run",
    "restore_run",
    "run_lineage_label",
    "run_node_id",
    "run_state",
    "update_run",
]

_IN_CHUNK = 500


def _parse_status(status: str | RunStatus) -> RunStatus:
    try:
        return RunStatus(status)
    except ValueError:
        raise InvalidInput(
            f"unknown run status {status!r}; one of {[s.value for s in RunStatus]}"
        ) from None


def require_run(session: Session, run_id: str) -> RunRow:
    """The run's row, ``run_id`` being a full id or a unique prefix of at least 6 characters.

    Callers use ``row.id`` (the full id) from here on, never the text they were given.
    ``InvalidInput`` for a malformed or too short id, ``NotFound`` for an unknown one,
    ``Conflict`` for a prefix several runs share.
    """
    full = resolve_id(session, RunRow.id, check_run_id_or_prefix(run_id), "run")
    row = session.get(RunRow, full)
    if row is None:
        raise NotFound(f"run {run_id} does not exist")
    return row


def require_run_id(session: Session, run_id: str) -> str:
    """The full id of the run ``run_id`` names, for callers that need nothing else of it.

    Raises as :func:`require_run` does, but reads one column in plain SQL, not the whole row
    through the ORM.
    """
    return _liveness(session, run_id)[0]


def require_writable_run(
    session: Session, run_id: str, what: str, *, finished: bool = False
) -> str:
    """The full id of the run, which must be live and RUNNING to accept params, metrics or
    artifacts (or, with ``finished=True``, live in any status: MLflow's clients log to ended
    runs).

    Raises:
        InvalidInput, NotFound: As :func:`require_run`.
        Conflict: The run is deleted, or finished (without ``finished``); an ambiguous prefix.
    """
    return check_writable(_liveness(session, run_id), what, finished=finished)


def check_writable(state: tuple[str, str, str], what: str, *, finished: bool = False) -> str:
    """The full id of the run in ``state`` (:func:`run_state`), if it may take ``what``, as
    :func:`require_writable_run` says."""
    full_id, stage, status = state
    if stage == "deleted":
        raise Conflict(f"run {full_id} is deleted; restore it before logging {what}")
    if not finished and RunStatus(status).is_terminal:
        raise Conflict(
            f"run {full_id} is {status}; {what} can only be logged to a RUNNING run",
            details={"status": status},
        )
    return full_id


# Every write checks the run first; MLflow's client sends a request per point. An ORM load of
# the row (``Session.get``: identity map, instance state, all columns) costs about 150 us a
# call on SQLite, this statement through the driver about 20 us.
_LIVENESS = "SELECT id, lifecycle_stage, status FROM runs WHERE id = :id"


def _liveness(session: Session, run_id: str) -> tuple[str, str, str]:
    """The run's full id, lifecycle stage and status (``run_id`` resolved as in
    :func:`require_run`). Read through the session's connection, in its transaction: a run
    changed through the ORM is current here, as every service flushes its changes."""
    full = resolve_id(session, RunRow.id, check_run_id_or_prefix(run_id), "run")
    return run_state(SessionSql(session), full, run_id)


def run_state(sql: Sql, full_id: str, given: str | None = None) -> tuple[str, str, str]:
    """The full id, lifecycle stage and status of the run ``full_id`` (``given``, what the
    caller was handed, names it in the error). Raises ``NotFound``."""
    found = sql.rows(_LIVENESS, {"id": full_id})
    if not found:
        raise NotFound(f"run {given or full_id} does not exist")
    full, stage, status = found[0]
    return full, stage, status


def create_run(
    session: Session,
    experiment_id: str,
    *,
    run_id: str | None = None,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
    start_time: int | None = None,
    user_id: str | None = None,
) -> Run:
    """Start a run in an experiment.

    A client may choose ``run_id`` itself: creating a run whose id exists in the same experiment
    returns it unchanged, which makes a retried request harmless.

    Raises:
        NotFound: The experiment or parent run does not exist.
        Conflict: The experiment is deleted, or ``run_id`` exists in another experiment.
        InvalidInput: A malformed id, name or tag.
    """
    if run_id is not None:
        check_run_id(run_id)
        existing = session.get(RunRow, run_id)
        if existing is not None:
            if existing.experiment_id != experiment_id:
                raise Conflict(f"run {run_id} already exists in another experiment")
            return get_run(session, run_id)
    require_active_experiment(session, experiment_id)
    if parent_run_id is not None:
        parent = require_run(session, parent_run_id)
        if parent.experiment_id != experiment_id:
            raise InvalidInput(f"parent run {parent_run_id} belongs to another experiment")
        parent_run_id = parent.id
    if run_name is not None:
        check_name(run_name, "run")
    checked_tags = clean_tags(tags)
    row = RunRow(
        id=run_id or uuid.uuid4().hex,
        experiment_id=experiment_id,
        name=run_name or random_run_name(),
        status=RunStatus.RUNNING.value,
        start_time=start_time if start_time is not None else now_ms(),
        end_time=None,
        parent_run_id=parent_run_id,
        user_id=user_id or current_user(),
        lifecycle_stage="active",
    )
    session.add(row)
    session.flush()
    session.add_all(RunTagRow(run_id=row.id, key=k, value=v) for k, v in checked_tags.items())
    session.flush()
    return Run(info=_info(row), data=RunData(tags=checked_tags))


def update_run(
    session: Session,
    run_id: str,
    *,
    status: str | RunStatus | None = None,
    end_time: int | None = None,
    run_name: str | None = None,
    notes: str | None = None,
) -> RunInfo:
    """Change a run's status (terminal statuses stamp ``end_time``), name or notes."""
    row = require_run(session, run_id)
    if status is not None:
        new_status = _parse_status(status)
        row.status = new_status.value
        if new_status.is_terminal:
            row.end_time = end_time if end_time is not None else now_ms()
        else:
            row.end_time = None
    elif end_time is not None:
        row.end_time = end_time
    if run_name is not None:
        row.name = check_name(run_name, "run")
    if notes is not None:
        row.notes = notes
    session.flush()
    return _info(row)


def delete_run(session: Session, run_id: str) -> RunInfo:
    """Mark a run deleted: it leaves listings and searches; ``restore_run`` brings it back."""
    row = require_run(session, run_id)
    row.lifecycle_stage = "deleted"
    session.flush()
    return _info(row)


def restore_run(session: Session, run_id: str) -> RunInfo:
    """Undo ``delete_run``."""
    row = require_run(session, run_id)
    row.lifecycle_stage = "active"
    session.flush()
    return _info(row)


def get_run(session: Session, run_id: str) -> Run:
    """One run with its params, tags and latest metrics. Raises ``NotFound``."""
    return get_runs(session, [require_run(session, run_id)])[0]


def get_runs(session: Session, rows: Sequence[Any]) -> list[Run]:
    """Runs with their data, loaded in three queries per 500 runs (never one per run).

    ``rows`` are ``RunRow`` objects or Core rows of the ``runs`` columns (what search selects,
    skipping the ORM's per-object bookkeeping).
    """
    params: dict[str, dict[str, str]] = {r.id: {} for r in rows}
    tags: dict[str, dict[str, str]] = {r.id: {} for r in rows}
    metrics: dict[str, dict[str, float]] = {r.id: {} for r in rows}
    ids = list(params)
    # Core statements on the session's connection, fetched whole: plain tuples, no ORM rows.
    connection = session.connection()
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        for table, target in ((ParamRow, params), (RunTagRow, tags), (LatestMetricRow, metrics)):
            query = select(table.run_id, table.key, table.value).where(table.run_id.in_(chunk))
            for run_id, key, value in connection.execute(query).all():
                target[run_id][key] = value
    return [
        Run(
            info=_info(r), data=RunData(params=params[r.id], metrics=metrics[r.id], tags=tags[r.id])
        )
        for r in rows
    ]


def _info(row: Any) -> RunInfo:
    return from_row(RunInfo, row, run_id=row.id, run_name=row.name, status=RunStatus(row.status))


def run_lineage_label(session: Session, run_id: str) -> dict[str, Any]:
    """How a run appears in a lineage walk: its name and status, the commit of its code (shown
    as its upstream ``commit`` node) and its parent run."""
    run = session.get(RunRow, run_id)
    if run is None:
        return {}
    out: dict[str, Any] = {"label": f"run {run.name} ({run_id[:8]}, {run.status})"}
    commit = session.scalar(
        select(RunTagRow.value).where(
            RunTagRow.run_id == run_id, RunTagRow.key == "opsloop.git.commit"
        )
    )
    if commit:
        out["commit"] = commit
    if run.parent_run_id:
        out["parent_run_id"] = run.parent_run_id
    return out


def run_node_id(session: Session, run_id: str) -> str:
    """The lineage node of a run id (``NotFound`` for an unknown run)."""
    return require_run_id(session, run_id)
