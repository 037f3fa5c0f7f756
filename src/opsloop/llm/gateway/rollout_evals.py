"""The online eval of a rollout: a route's ``judge.assertions`` run on a sample of the answers
its two targets gave, each result stored as a score on the answer's span.

It runs on the controller's thread, never on the request path. A span is in the sample when a
hash of its id falls under ``judge.sample``, so every gateway process picks the same spans and
each is scored once (a span that already has the score is skipped). The score is the weighted
mean of the assertions' scores (0..1), as an eval suite scores a test; the failed assertions'
reasons go in its comment.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.llm.gateway.rollout_config import EVAL_SCORE
from opsloop.llm.gateway.rollout_config import JudgeConfig
from opsloop.llm.gateway.rollout_stats import SERVICE
from opsloop.llm.gateway.rollout_stats import answered_by
from opsloop.llm.tracing.entities import ScoreCreate
from opsloop.llm.tracing.services import add_score
from opsloop.llm.tracing.tables import ScoreRow
from opsloop.llm.tracing.tables import SpanRow

__all__ = ["AUTHOR", "MAX_PER_TICK", "in_sample", "score_sample"]

AUTHOR = "gateway-rollout"
MAX_PER_TICK = 200  # spans scored per target and tick: a backlog is worked off over ticks


def in_sample(span_id: str, fraction: float) -> bool:
    """Whether ``span_id`` falls in a sample of ``fraction`` (the same answer everywhere)."""
    digest = hashlib.blake2b(span_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


def score_sample(
    session: Session, route: str, targets: list[str], since_ms: int, judge: JudgeConfig
) -> int:
    """Score the sampled, not yet scored answers of ``targets`` since ``since_ms``; returns how
    many were scored."""
    if not judge.assertions:
        return 0
    from opsloop.llm.evals.assertions import Assertion
    from opsloop.llm.evals.assertions import check
    from opsloop.llm.evals.providers import Completion

    assertions = [Assertion.model_validate(a) for a in judge.assertions]
    done = select(ScoreRow.span_id).where(
        ScoreRow.name == EVAL_SCORE, ScoreRow.span_id.is_not(None)
    )
    scored = 0
    for target in targets:
        rows = session.execute(
            select(
                SpanRow.trace_id, SpanRow.span_id, SpanRow.output, SpanRow.duration_ms, SpanRow.cost
            )
            .where(
                SpanRow.service == SERVICE,
                SpanRow.name == f"chat {route}",
                SpanRow.start_ns >= since_ms * 10**6,
                SpanRow.status != "error",
                answered_by(target),
                SpanRow.span_id.not_in(done),
            )
            .order_by(SpanRow.start_ns)
        )
        picked = 0
        for trace_id, span_id, output, ms, cost in rows:
            if picked >= MAX_PER_TICK:
                break
            if not in_sample(span_id, judge.sample):
                continue
            completion = Completion(output=output, latency_ms=float(ms), cost=cost)
            outcomes = [check(a, a.value, completion, {}, None) for a in assertions]
            weight = sum(o.weight for o in outcomes)
            score = sum(o.score * o.weight for o in outcomes) / weight if weight else 1.0
            reasons = "; ".join(f"{o.type}: {o.reason}" for o in outcomes if not o.passed)
            body = ScoreCreate(
                trace_id=trace_id,
                span_id=span_id,
                name=EVAL_SCORE,
                value=float(score),
                comment=reasons[:10_000] or None,
                source="eval",
            )
            add_score(session, body, AUTHOR)
            picked += 1
        scored += picked
    return scored
