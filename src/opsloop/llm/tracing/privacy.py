"""Deleting traces for retention and erasure: old traces, old scores, one end user's traces.

Every function takes an open session and never commits; the caller (the privacy workflow)
runs each batch in a transaction of its own, so a sweep over millions of spans never holds
SQLite's write lock for more than one batch. A trace is deleted with everything keyed by its
id here (spans, tags, scores); the ids come back so the caller can delete what other domains
keep about those traces (annotation items) in the same transaction.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.llm.tracing.tables import ScoreRow
from opsloop.llm.tracing.tables import SpanRow
from opsloop.llm.tracing.tables import TraceRow
from opsloop.llm.tracing.tables import TraceTagRow

__all__ = [
    "count_traces",
    "delete_scores_before",
    "delete_traces",
    "old_trace_ids",
    "user_trace_ids",
]


def old_trace_ids(session: Session, cutoff_ms: int, limit: int) -> list[str]:
    """Up to ``limit`` traces that started before ``cutoff_ms`` (oldest first; the start
    index makes this a range read)."""
    query = (
        select(TraceRow.trace_id)
        .where(TraceRow.start_ns < cutoff_ms * 1_000_000)
        .order_by(TraceRow.start_ns)
        .limit(limit)
    )
    return list(session.scalars(query))


def user_trace_ids(session: Session, user_id: str) -> list[str]:
    """Every trace that served ``user_id``: its summary says so, or one of its spans does (a
    trace's ``user_id`` is the largest of its spans', so a trace with spans for two users is
    listed under one of them)."""
    by_trace = select(TraceRow.trace_id).where(TraceRow.user_id == user_id)
    by_span = select(SpanRow.trace_id).where(SpanRow.user_id == user_id).distinct()
    return sorted(set(session.scalars(by_trace)) | set(session.scalars(by_span)))


def count_traces(session: Session, trace_ids: list[str]) -> dict[str, int]:
    """What :func:`delete_traces` would delete for ``trace_ids``, kind by kind."""
    counts = {"traces": 0, "spans": 0, "scores": 0}
    if not trace_ids:
        return counts
    for kind, table in (("traces", TraceRow), ("spans", SpanRow), ("scores", ScoreRow)):
        counts[kind] = int(
            session.scalar(select(func.count()).where(table.trace_id.in_(trace_ids))) or 0
        )
    return counts


def delete_traces(session: Session, trace_ids: list[str]) -> dict[str, int]:
    """Delete ``trace_ids`` (a batch: at most a few hundred) with their spans, tags and
    scores; the rows deleted, kind by kind."""
    counts = {"traces": 0, "spans": 0, "scores": 0}
    if not trace_ids:
        return counts
    counts["spans"] = session.execute(
        delete(SpanRow).where(SpanRow.trace_id.in_(trace_ids))
    ).rowcount
    session.execute(delete(TraceTagRow).where(TraceTagRow.trace_id.in_(trace_ids)))
    counts["scores"] = session.execute(
        delete(ScoreRow).where(ScoreRow.trace_id.in_(trace_ids))
    ).rowcount
    counts["traces"] = session.execute(
        delete(TraceRow).where(TraceRow.trace_id.in_(trace_ids))
    ).rowcount
    return counts


def delete_scores_before(session: Session, cutoff_ms: int, limit: int) -> int:
    """Delete up to ``limit`` scores made before ``cutoff_ms``; how many were deleted (fewer
    than ``limit``: none older are left)."""
    # no ORDER BY: scores have no index on created_at, and the oldest sit first in the table
    old = select(ScoreRow.id).where(ScoreRow.created_at < cutoff_ms).limit(limit)
    ids = list(session.scalars(old))
    if not ids:
        return 0
    return int(session.execute(delete(ScoreRow).where(ScoreRow.id.in_(ids))).rowcount)
