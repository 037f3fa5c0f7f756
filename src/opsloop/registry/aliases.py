"""Aliases of registered models, and the history of every decision about them.

Aliases move only through here, and every move is an event: a manual ``set`` or ``delete``, a
gated ``promoted`` or ``rejected`` (with the gate's verdict), a ``forced`` move (with its
reason). Every function takes an open session and never commits.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import Conflict
from opsloop.errors import NotFound
from opsloop.kernel.refs import check_alias
from opsloop.kernel.timeutil import now_ms
from opsloop.registry.entities import AliasEvent
from opsloop.registry.entities import ModelVersion
from opsloop.registry.models import NUMBERING
from opsloop.registry.models import model_row
from opsloop.registry.models import resolve_version_row
from opsloop.registry.tables import AliasEventRow
from opsloop.registry.tables import ModelAliasRow
from opsloop.registry.tables import RegisteredModelRow
from opsloop.registry.versions import get_version
from opsloop.store.numbered import pointed_number
from opsloop.store.rows import from_row

__all__ = ["alias_history", "delete_alias", "move_alias", "set_alias"]


# -- recording decisions -------------------------------------------------------------------------
def _record(
    session: Session,
    model: RegisteredModelRow,
    alias: str,
    *,
    kind: str,
    from_number: int | None,
    to_number: int | None,
    moved: bool,
    created_by: str,
    reason: str | None = None,
    verdict: dict[str, Any] | None = None,
) -> AliasEvent:
    row = AliasEventRow(
        model_id=model.id, alias=alias, kind=kind, from_number=from_number, to_number=to_number,
        moved=moved, reason=reason, verdict=json.dumps(verdict) if verdict is not None else None,
        created_at=now_ms(), created_by=created_by,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return _event(model.name, row, verdict)


def _event(name: str, row: AliasEventRow, verdict: dict[str, Any] | None) -> AliasEvent:
    """A recorded decision as returned; ``verdict`` is the gate's report (the row keeps it as
    JSON)."""
    return from_row(AliasEvent, row, name=name, verdict=verdict)


def move_alias(
    session: Session,
    ref: str,
    alias: str,
    *,
    kind: str,
    moved: bool,
    created_by: str,
    reason: str | None = None,
    verdict: dict[str, Any] | None = None,
    expected_from: int | str | None = "any",
) -> AliasEvent:
    """Record a decision about ``alias`` and move it to ``ref`` when ``moved``.

    ``expected_from`` makes the move conditional: a gate compares against the version the
    alias held when it started, and refuses (``Conflict``) if someone moved it meanwhile.
    """
    check_alias(alias)
    model, row = resolve_version_row(session, ref)
    current = pointed_number(session, NUMBERING, model.id, alias)
    if expected_from != "any" and current != expected_from:
        raise Conflict(
            f"{model.name}@{alias} moved to version {current} while the gate ran "
            f"(it compared against {expected_from}); promote again"
        )
    if moved:
        session.merge(ModelAliasRow(model_id=model.id, alias=alias, number=row.number))
    return _record(
        session,
        model,
        alias,
        kind=kind,
        from_number=current,
        to_number=row.number,
        moved=moved,
        created_by=created_by,
        reason=reason,
        verdict=verdict,
    )


def set_alias(
    session: Session, ref: str, alias: str, *, created_by: str, reason: str | None = None
) -> ModelVersion:
    """Point ``alias`` at ``ref`` without a gate (recorded as a manual ``set``)."""
    move_alias(session, ref, alias, kind="set", moved=True, created_by=created_by, reason=reason)
    return get_version(session, ref)


def delete_alias(session: Session, name: str, alias: str, *, created_by: str) -> None:
    model = model_row(session, name)
    current = pointed_number(session, NUMBERING, model.id, alias)
    if current is None:
        raise NotFound(f"model {name!r} has no alias {alias!r}")
    session.execute(
        delete(ModelAliasRow).where(
            ModelAliasRow.model_id == model.id, ModelAliasRow.alias == alias
        )
    )
    _record(
        session,
        model,
        alias,
        kind="delete",
        from_number=current,
        to_number=None,
        moved=True,
        created_by=created_by,
    )


def alias_history(session: Session, name: str, alias: str | None = None) -> list[AliasEvent]:
    """Every decision about the model's aliases (or one alias), newest first."""
    model = model_row(session, name)
    query = select(AliasEventRow).where(AliasEventRow.model_id == model.id)
    if alias is not None:
        query = query.where(AliasEventRow.alias == alias)
    rows = session.scalars(query.order_by(AliasEventRow.id.desc())).all()
    return [_event(model.name, r, json.loads(r.verdict) if r.verdict else None) for r in rows]
