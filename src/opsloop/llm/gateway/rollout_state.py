"""A route's rollout state in the store, and every change to it: the controller's and a
person's go through :func:`change`, which writes the history row and the audit event in the
same transaction as the new share, so the history cannot miss a change or record one that
did not happen.

States: ``running`` (judged every interval), ``paused`` (the share holds, nothing is judged),
``promoted`` (the candidate takes the pair's traffic), ``rolled_back`` (the baseline does).
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.governance import audit
from opsloop.llm.gateway.config import RouteConfig
from opsloop.llm.gateway.rollout_tables import RouteHistoryRow
from opsloop.llm.gateway.rollout_tables import RouteStateRow
from opsloop.llm.latest import latest_oldest_first
from opsloop.store.database import dialect_insert

__all__ = [
    "CONTROLLER",
    "HistoryEntry",
    "RouteState",
    "change",
    "history",
    "list_routes",
    "override",
    "route_row",
    "sync_route",
]

CONTROLLER = "gateway-rollout-controller"
Override = Literal["promote", "rollback", "pause", "resume"]


class RouteState(BaseModel):
    """A route with its targets and, while it has one, its rollout's live state."""

    model_config = ConfigDict(frozen=True)

    route: str
    targets: list[dict[str, Any]]
    baseline: str | None = None
    candidate: str | None = None
    mode: str | None = None
    share: float | None = None
    step: int = 0
    status: str | None = None
    judged_at: int | None = None
    verdict: dict[str, Any] | None = None
    updated_at: int
    updated_by: str


class HistoryEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    route: str
    at: int
    actor: str
    action: str
    share_before: float | None
    share_after: float | None
    reason: str
    details: dict[str, Any]


def _state(row: RouteStateRow) -> RouteState:
    return RouteState(
        route=row.route, targets=json.loads(row.targets), baseline=row.baseline,
        candidate=row.candidate, mode=row.mode, share=row.share, step=row.step, status=row.status,
        judged_at=row.judged_at, verdict=json.loads(row.verdict) if row.verdict else None,
        updated_at=row.updated_at, updated_by=row.updated_by,
    )  # fmt: skip


def route_row(session: Session, route: str, *, lock: bool = False) -> RouteStateRow:
    row = session.get(RouteStateRow, route, with_for_update=lock)
    if row is None:
        raise NotFound(
            f"no gateway has served a route named {route!r}; see opsloop gateway-routes list"
        )
    return row


def change(
    session: Session, row: RouteStateRow, action: str, actor: str, reason: str, now: int, *,
    share: float | None, status: str | None, step: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Move ``row`` to ``share``/``status`` (and ``step``; the judging window restarts) and
    record it in the route's history and the audit log."""
    before = row.share
    if row.updated_at is not None:  # a route's changes keep their order, even in one ms
        now = max(now, row.updated_at + 1)
    row.share, row.status = share, status
    if step is not None:
        row.step = step
    row.step_started_at, row.judged_at = now, None
    row.updated_at, row.updated_by = now, actor
    session.add(
        RouteHistoryRow(
            id=uuid.uuid4().hex, route=row.route, at=now, actor=actor[:250], action=action,
            share_before=before, share_after=share, reason=reason,
            details=json.dumps(details or {}, default=repr),
        )
    )  # fmt: skip
    audit.append(
        session, actor=actor, action=f"gateway rollout {action}: {reason}"[:500],
        resource=f"gateway/routes/{row.route}", outcome=200, at=now,
    )  # fmt: skip
    session.flush()


def sync_route(session: Session, config: RouteConfig, actor: str, now: int) -> RouteStateRow:
    """The route's row, registered or brought in line with ``config``: a rollout that is new
    (or names another pair or mode) starts at its first share; one that was removed ends."""
    targets = json.dumps([{"name": t.name, "weight": t.weight} for t in config.targets])
    session.execute(
        dialect_insert(session, RouteStateRow.__table__).on_conflict_do_nothing(),
        [{"route": config.name, "targets": targets, "step": 0, "updated_at": now,
          "updated_by": actor}],
    )  # fmt: skip
    row = route_row(session, config.name, lock=True)
    row.targets = targets
    rollout = config.rollout
    if rollout is None:
        if row.candidate is not None:
            change(session, row, "end", actor, "the rollout section left the config", now,
                   share=None, status=None, step=0)  # fmt: skip
            row.baseline = row.candidate = row.mode = row.verdict = None
        return row
    pair = (rollout.baseline, rollout.candidate, rollout.mode)
    if (row.baseline, row.candidate, row.mode) != pair:
        row.baseline, row.candidate, row.mode, row.verdict = *pair, None
        first = rollout.first_share()
        change(session, row, "start", actor,
               f"{rollout.mode} of {rollout.candidate} against {rollout.baseline} at {first:g}%",
               now, share=first, status="running", step=0)  # fmt: skip
    return row


def list_routes(session: Session) -> list[RouteState]:
    return [_state(r) for r in session.scalars(select(RouteStateRow).order_by(RouteStateRow.route))]


def history(session: Session, route: str, limit: int = 1000) -> list[HistoryEntry]:
    """The route's changes, oldest first (the latest ``limit``)."""
    route_row(session, route)
    newest_first = (
        select(RouteHistoryRow)
        .where(RouteHistoryRow.route == route)
        .order_by(RouteHistoryRow.at.desc(), RouteHistoryRow.id)
    )
    rows = latest_oldest_first(session, newest_first, limit)
    return [
        HistoryEntry(
            id=r.id,
            route=r.route,
            at=r.at,
            actor=r.actor,
            action=r.action,
            share_before=r.share_before,
            share_after=r.share_after,
            reason=r.reason,
            details=json.loads(r.details),
        )
        for r in rows
    ]


_ALLOWED: dict[str, tuple[str, ...]] = {
    "promote": ("running", "paused", "rolled_back"),
    "rollback": ("running", "paused", "promoted"),
    "pause": ("running",),
    "resume": ("paused",),
}


def override(
    session: Session, route: str, action: Override, actor: str, reason: str | None, now: int
) -> RouteState:
    """A person's promote, rollback, pause or resume of the route's rollout.

    Raises:
        NotFound: No gateway has registered the route.
        InvalidInput: It has no rollout, or the action does not apply to its state (pausing a
            rollout that is not running, promoting one already promoted).
    """
    if action not in _ALLOWED:
        raise InvalidInput(f"unknown action {action!r}: promote, rollback, pause or resume")
    row = route_row(session, route, lock=True)
    if row.candidate is None:
        raise InvalidInput(f"route {route!r} has no rollout; add a rollout section to its config")
    if row.status not in _ALLOWED[action]:
        raise InvalidInput(
            f"cannot {action} the rollout of {route!r}: it is {row.status} "
            f"({action} applies when it is {' or '.join(_ALLOWED[action])})"
        )
    why = reason or f"{action} by hand"
    if action == "promote":
        change(session, row, "promote", actor, why, now, share=100.0, status="promoted")
    elif action == "rollback":
        change(session, row, "rollback", actor, why, now, share=0.0, status="rolled_back")
    else:
        status = "paused" if action == "pause" else "running"
        change(session, row, action, actor, why, now, share=row.share, status=status)
    return _state(row)
