"""Who asked for a trigger's firing, so the scheduler runs it as them.

A pipeline run a trigger starts is the trigger's creator's run: the scheduler looks up the
creator of each pending firing's trigger (:func:`firing_authors`) and runs it with
:func:`~opsloop.governance.acting.run_as`, acting as that user (see
:mod:`opsloop.governance.acting`, where the principal is built and why).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.governance.acting import BACKGROUND_AUTH
from opsloop.governance.acting import author_principal
from opsloop.governance.acting import run_as
from opsloop.kernel.identity import Principal
from opsloop.pipelines.tables import FiringRow
from opsloop.pipelines.tables import TriggerRow

__all__ = ["BACKGROUND_AUTH", "author_principal", "firing_authors", "run_as"]


def firing_authors(session: Session, firing_ids: list[str]) -> dict[str, Principal]:
    """Who asked for each firing: the creator of its trigger, as a principal."""
    if not firing_ids:
        return {}
    rows = session.execute(
        select(FiringRow.id, TriggerRow.created_by)
        .join(TriggerRow, TriggerRow.id == FiringRow.trigger_id)
        .where(FiringRow.id.in_(firing_ids))
    ).all()
    principals: dict[str, Principal] = {}
    out = {}
    for firing_id, author in rows:
        if author not in principals:
            principals[author] = author_principal(session, author)
        out[firing_id] = principals[author]
    return out
