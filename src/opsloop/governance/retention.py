"""Retention settings: how many days each kind of data is kept in a workspace.

Governance holds the settings only. What is deleted lives in the domains that own it (tracing,
feedback, the serving prediction log), far above this floor, so the sweep that reads these
settings and calls them is a workflow (:mod:`opsloop.workflows.privacy`), run by the scheduler.

A sweep of one kind is claimed with a compare-and-set on ``swept_at`` (:func:`claim_sweep`),
the way the scheduler claims a due monitor: several schedulers on one database sweep each kind
at most once per :data:`SWEEP_EVERY_MS`, and a forced sweep (``opsloop privacy sweep``) still
moves the mark so the scheduler does not repeat it at once.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.governance.roles import DEFAULT_WORKSPACE
from opsloop.governance.tables import RetentionRow
from opsloop.kernel.timeutil import now_ms

__all__ = [
    "DAY_MS",
    "KINDS",
    "MAX_DAYS",
    "SWEEP_EVERY_MS",
    "RetentionPolicy",
    "RetentionSet",
    "claim_sweep",
    "due_kinds",
    "get_policy",
    "parse_days",
    "set_policy",
]

KINDS = ("traces", "scores", "predictions")  # traces take their spans, tags and items along
MAX_DAYS = 36_500
DAY_MS = 86_400_000
SWEEP_EVERY_MS = 3_600_000

# strict: "30" or 30.5 in a JSON body is refused (400) rather than read as a number of days
Days = Annotated[int, Field(strict=True, ge=1, le=MAX_DAYS)]


class RetentionSet(BaseModel):
    """A change of retention: a kind given with a number of days keeps that many days; given
    as ``null``, it is kept forever again; not given, it stays as it is."""

    model_config = ConfigDict(extra="forbid")

    traces: Days | None = Field(None, description="days to keep traces and their spans")
    scores: Days | None = Field(None, description="days to keep scores")
    predictions: Days | None = Field(None, description="days to keep prediction-log rows")


class RetentionPolicy(BaseModel):
    """A workspace's retention: days per kind (``None``: kept forever) and each kind's last
    sweep (epoch ms)."""

    workspace: str = DEFAULT_WORKSPACE
    traces: int | None = None
    scores: int | None = None
    predictions: int | None = None
    swept_at: dict[str, int] = Field(default_factory=dict)
    updated_at: int | None = None
    updated_by: str | None = None


def parse_days(text: str, option: str) -> int | None:
    """A CLI value: a whole number of days (1 to :data:`MAX_DAYS`), or ``off`` (kept
    forever: ``None``). ``InvalidInput`` otherwise."""
    value = text.strip().lower()
    if value in ("off", "none", "forever"):
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_DAYS:
        raise InvalidInput(
            f"{option} takes a whole number of days from 1 to {MAX_DAYS}, or 'off'; got {text!r}"
        )
    return int(value)


def get_policy(session: Session, workspace: str = DEFAULT_WORKSPACE) -> RetentionPolicy:
    rows = session.scalars(select(RetentionRow).where(RetentionRow.workspace == workspace)).all()
    policy = RetentionPolicy(workspace=workspace)
    for row in rows:
        setattr(policy, row.kind, row.days)
        if row.swept_at is not None:
            policy.swept_at[row.kind] = row.swept_at
        if policy.updated_at is None or row.updated_at > policy.updated_at:
            policy.updated_at, policy.updated_by = row.updated_at, row.updated_by
    return policy


def set_policy(
    session: Session, body: RetentionSet, actor: str, workspace: str = DEFAULT_WORKSPACE
) -> RetentionPolicy:
    """Apply the kinds ``body`` names (see :class:`RetentionSet`); the rest stay."""
    now = now_ms()
    for kind in sorted(body.model_fields_set):
        days = getattr(body, kind)
        row = session.get(RetentionRow, (workspace, kind))
        if row is None:
            session.add(RetentionRow(workspace=workspace, kind=kind, days=days,
                                     updated_at=now, updated_by=actor))  # fmt: skip
        else:
            row.days, row.updated_at, row.updated_by = days, now, actor
    session.flush()
    return get_policy(session, workspace)


def due_kinds(session: Session, now: int, workspace: str = DEFAULT_WORKSPACE) -> list[str]:
    """The kinds with a retention whose last sweep is an hour old or more (a read: the
    scheduler's cheap check before it claims anything)."""
    stale = or_(RetentionRow.swept_at.is_(None), RetentionRow.swept_at <= now - SWEEP_EVERY_MS)
    query = select(RetentionRow.kind).where(
        RetentionRow.workspace == workspace, RetentionRow.days.is_not(None), stale
    )
    return list(session.scalars(query))


def claim_sweep(
    session: Session, kind: str, now: int, *, force: bool = False,
    workspace: str = DEFAULT_WORKSPACE,
) -> int | None:  # fmt: skip
    """Claim this hour's sweep of ``kind``: its days when this caller won (``swept_at`` moved
    to ``now``), ``None`` when the kind has no retention or another sweep took this hour.
    ``force`` claims whenever a retention is set."""
    row = session.get(RetentionRow, (workspace, kind))
    if row is None or row.days is None:
        return None
    seen = row.swept_at
    if not force and seen is not None and seen > now - SWEEP_EVERY_MS:
        return None
    same = RetentionRow.swept_at.is_(None) if seen is None else RetentionRow.swept_at == seen
    moved = session.execute(
        update(RetentionRow)
        .where(RetentionRow.workspace == workspace, RetentionRow.kind == kind, same)
        .values(swept_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    return row.days if moved else None
