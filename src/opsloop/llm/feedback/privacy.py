"""Deleting review items of traces that retention or an erasure deletes.

An annotation item names a trace (queue, trace id, who claimed and completed it); once the
trace is gone the item points at nothing, and for an erasure it is the record that this end
user's conversation was reviewed. The scores a review left are tracing's (deleted with the
trace). Takes an open session, never commits.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.llm.feedback.tables import AnnotationItemRow

__all__ = ["count_items", "delete_items"]


def count_items(session: Session, trace_ids: list[str]) -> int:
    if not trace_ids:
        return 0
    query = select(func.count()).where(AnnotationItemRow.trace_id.in_(trace_ids))
    return int(session.scalar(query) or 0)


def delete_items(session: Session, trace_ids: list[str]) -> int:
    """Delete the annotation items of ``trace_ids`` (a batch) in every queue; how many."""
    if not trace_ids:
        return 0
    query = delete(AnnotationItemRow).where(AnnotationItemRow.trace_id.in_(trace_ids))
    return int(session.execute(query).rowcount)
