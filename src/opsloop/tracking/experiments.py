"""Experiment services: create, look up, list, rename, delete and restore experiments.

Every function takes an open session and never commits (the caller owns the transaction).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import Conflict
from opsloop.errors import NotFound
from opsloop.kernel.paging import Page
from opsloop.kernel.paging import decode_page_token
from opsloop.kernel.paging import split_page
from opsloop.kernel.timeutil import now_ms
from opsloop.store.columns import delete_tag_row
from opsloop.store.columns import tags_of
from opsloop.store.database import dialect_insert
from opsloop.store.rows import from_row
from opsloop.tracking.entities import Experiment
from opsloop.tracking.tables import ExperimentRow
from opsloop.tracking.tables import ExperimentTagRow
from opsloop.tracking.validation import check_name
from opsloop.tracking.validation import clean_tag
from opsloop.tracking.validation import clean_tags
from opsloop.tracking.validation import lifecycle_stages

__all__ = [
    "DEFAULT_EXPERIMENT",
    "create_experiment",
    "delete_experiment",
    "delete_experiment_tag",
    "find_experiments",
    "get_experiment",
    "get_experiment_by_name",
    "get_or_create_experiment",
    "list_experiments",
    "require_active_experiment",
    "restore_experiment",
    "set_experiment_tag",
    "update_experiment",
]

DEFAULT_EXPERIMENT = "Default"


def _to_entity(session: Session, row: ExperimentRow) -> Experiment:
    tags = tags_of(session, ExperimentTagRow.experiment_id, row.id)
    return from_row(Experiment, row, experiment_id=row.id, tags=tags)


def _row(session: Session, experiment_id: str) -> ExperimentRow:
    row = session.get(ExperimentRow, experiment_id)
    if row is None:
        raise NotFound(f"experiment {experiment_id!r} does not exist")
    return row


def create_experiment(
    session: Session,
    name: str,
    *,
    description: str | None = None,
    tags: dict[str, str] | None = None,
) -> Experiment:
    """Create an experiment.

    Raises:
        InvalidInput: The name or a tag is malformed.
        Conflict: An experiment (active or deleted) already has this name.
    """
    check_name(name, "experiment")
    checked_tags = clean_tags(tags)
    existing = session.scalar(select(ExperimentRow).where(ExperimentRow.name == name))
    if existing is not None:
        hint = (
            " (it is deleted: restore it or pick another name)"
            if existing.lifecycle_stage == "deleted"
            else ""
        )
        raise Conflict(
            f"an experiment named {name!r} already exists{hint}",
            details={"experiment_id": existing.id},
        )
    now = now_ms()
    row = ExperimentRow(
        id=uuid.uuid4().hex,
        name=name,
        description=description,
        lifecycle_stage="active",
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    for key, value in checked_tags.items():
        session.add(ExperimentTagRow(experiment_id=row.id, key=key, value=value))
    session.flush()
    return _to_entity(session, row)


def get_experiment(session: Session, experiment_id: str) -> Experiment:
    """Look an experiment up by id. Raises ``NotFound``."""
    return _to_entity(session, _row(session, experiment_id))


def get_experiment_by_name(session: Session, name: str) -> Experiment:
    """Look an experiment up by name. Raises ``NotFound``."""
    row = session.scalar(select(ExperimentRow).where(ExperimentRow.name == name))
    if row is None:
        raise NotFound(f"no experiment named {name!r}")
    return _to_entity(session, row)


def get_or_create_experiment(session: Session, name: str) -> Experiment:
    """The experiment with this name, created if missing (the SDK's ``set_experiment``)."""
    row = session.scalar(select(ExperimentRow).where(ExperimentRow.name == name))
    if row is None:
        return create_experiment(session, name)
    if row.lifecycle_stage == "deleted":
        raise Conflict(f"experiment {name!r} is deleted; restore it or pick another name")
    return _to_entity(session, row)


def require_active_experiment(session: Session, experiment_id: str) -> ExperimentRow:
    """The experiment row, which must exist and not be deleted (to create runs in it)."""
    row = _row(session, experiment_id)
    if row.lifecycle_stage != "active":
        raise Conflict(f"experiment {row.name!r} is deleted; restore it to add runs")
    return row


def list_experiments(
    session: Session,
    *,
    view: str = "active",
    max_results: int = 1000,
    page_token: str | None = None,
) -> Page[Experiment]:
    """Experiments ordered by name, one page at a time."""
    offset = decode_page_token(page_token)
    rows = session.scalars(
        select(ExperimentRow)
        .where(ExperimentRow.lifecycle_stage.in_(lifecycle_stages(view)))
        .order_by(ExperimentRow.name)
        .offset(offset)
        .limit(max_results + 1)
    ).all()
    rows, token = split_page(rows, offset, max_results)
    return Page[Experiment](items=[_to_entity(session, r) for r in rows], next_page_token=token)


def find_experiments(session: Session, text: str, limit: int = 20) -> list[Experiment]:
    """Active experiments whose name contains ``text`` (case-insensitive), by name."""
    rows = session.scalars(
        select(ExperimentRow)
        .where(ExperimentRow.lifecycle_stage == "active")
        .where(ExperimentRow.name.icontains(text, autoescape=True))
        .order_by(ExperimentRow.name)
        .limit(limit)
    ).all()
    return [_to_entity(session, r) for r in rows]


def update_experiment(
    session: Session,
    experiment_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Experiment:
    """Rename an experiment or change its description."""
    row = _row(session, experiment_id)
    if name is not None and name != row.name:
        check_name(name, "experiment")
        if session.scalar(select(ExperimentRow.id).where(ExperimentRow.name == name)):
            raise Conflict(f"an experiment named {name!r} already exists")
        row.name = name
    if description is not None:
        row.description = description
    row.updated_at = now_ms()
    session.flush()
    return _to_entity(session, row)


def _set_stage(session: Session, experiment_id: str, stage: str) -> Experiment:
    row = _row(session, experiment_id)
    row.lifecycle_stage = stage
    row.updated_at = now_ms()
    session.flush()
    return _to_entity(session, row)


def delete_experiment(session: Session, experiment_id: str) -> Experiment:
    """Mark an experiment deleted (its runs stay; ``restore_experiment`` undoes it)."""
    return _set_stage(session, experiment_id, "deleted")


def restore_experiment(session: Session, experiment_id: str) -> Experiment:
    """Undo ``delete_experiment``."""
    return _set_stage(session, experiment_id, "active")


def set_experiment_tag(session: Session, experiment_id: str, key: str, value: str) -> None:
    """Set (or overwrite) one experiment tag."""
    _row(session, experiment_id)
    key, value = clean_tag(key, value)
    stmt = dialect_insert(session, ExperimentTagRow.__table__).values(
        experiment_id=experiment_id, key=key, value=value
    )
    session.execute(
        stmt.on_conflict_do_update(index_elements=["experiment_id", "key"], set_={"value": value})
    )


def delete_experiment_tag(session: Session, experiment_id: str, key: str) -> None:
    """Remove one experiment tag. Raises ``NotFound`` when it is not set."""
    if not delete_tag_row(session, ExperimentTagRow.experiment_id, experiment_id, key):
        raise NotFound(f"experiment {experiment_id!r} has no tag {key!r}")
