"""A target's window of traffic, read from the gateway's own spans and the scores on them.

The gateway writes one span per call (service ``opsloop-gateway``, named ``chat ROUTE`` or
``embeddings ROUTE``) with the target that answered in ``opsloop.gateway.target`` and every
failed attempt as ``ROUTE/TARGET: reason`` in ``opsloop.gateway.fallbacks`` (see
:mod:`.proxy`). A target's calls are the spans it answered plus those where an attempt on it
failed; its errors are those failed attempts plus the answers it gave that ended in an error (a
stream cut mid-answer). Its latency p95 is the nearest-rank percentile of the spans it answered
without error, and its score the mean of the numeric and true/false scores on their traces
(user feedback, and the online eval's :data:`~.rollout_config.EVAL_SCORE`).

Attributes are matched as the text the tracing store writes (``json.dumps``: ``"key": "value"``),
so the count runs in SQL the same on SQLite and PostgreSQL, with no JSON parsing per span.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.llm.gateway.rollout_config import JudgeConfig
from opsloop.llm.tracing.tables import ScoreRow
from opsloop.llm.tracing.tables import SpanRow

__all__ = ["SERVICE", "answered_by", "target_window"]

SERVICE = "opsloop-gateway"


def _route_spans(route: str, since_ms: int) -> list[Any]:
    return [
        SpanRow.service == SERVICE,
        SpanRow.name.in_([f"chat {route}", f"embeddings {route}"]),
        SpanRow.start_ns >= since_ms * 10**6,
    ]


def answered_by(target: str) -> Any:
    """Spans whose answer came from ``target``."""
    needle = f'"opsloop.gateway.target": {json.dumps(target, ensure_ascii=False)}'
    return SpanRow.attributes.contains(needle, autoescape=True)


def _failed_on(route: str, target: str) -> Any:
    needle = json.dumps(f"{route}/{target}: ", ensure_ascii=False)[:-1]  # the entry's start
    return SpanRow.attributes.contains(needle, autoescape=True)


def target_window(
    session: Session, route: str, target: str, since_ms: int, judge: JudgeConfig
) -> dict[str, Any]:
    """What ``target`` of ``route`` did since ``since_ms``, as
    :func:`opsloop.evaluation.canary.analyse` reads a window: ``requests``, ``errors``,
    ``error_rate``, ``latency_p95_ms``, ``score`` and ``labeled`` (how many scores)."""
    where = _route_spans(route, since_ms)
    answered, failed = answered_by(target), _failed_on(route, target)
    erred = or_(failed, and_(answered, SpanRow.status == "error"))
    calls, errors = session.execute(
        select(func.count(), func.sum(case((erred, 1), else_=0))).where(
            *where, or_(answered, failed)
        )
    ).one()
    calls, errors = int(calls or 0), int(errors or 0)
    good = [*where, answered, SpanRow.status != "error"]
    n = session.scalar(select(func.count()).where(*good)) or 0
    p95 = None
    if n:
        p95 = session.scalar(
            select(SpanRow.duration_ms)
            .where(*good)
            .order_by(SpanRow.duration_ms)
            .offset(math.ceil(0.95 * n) - 1)
            .limit(1)
        )
    traces = select(SpanRow.trace_id).where(*where, answered)
    scored = [ScoreRow.trace_id.in_(traces), ScoreRow.value.is_not(None)]
    if judge.score_names:
        scored.append(ScoreRow.name.in_(judge.score_names))
    labeled, mean = session.execute(
        select(func.count(), func.avg(ScoreRow.value)).where(*scored)
    ).one()
    return {
        "requests": calls,
        "errors": errors,
        "error_rate": errors / calls if calls else None,
        "latency_p95_ms": None if p95 is None else float(p95),
        "score": None if mean is None else float(mean),
        "labeled": int(labeled or 0),
    }
