"""LLM usage over time and conversations: what the dashboard and sessions pages read.

**Stats.** Every span that names a model is one LLM call. :func:`trace_stats` groups the calls
of a time range by model, gateway route, API key or user, and by time bucket, and sums calls,
errors, tokens and cost, with the p50 and p95 latency, in one SQL ``GROUP BY`` that runs the
same on SQLite and PostgreSQL: each call is ranked by duration inside its group and bucket
(``row_number`` and ``count`` window functions), and the p-th percentile is the shortest
duration whose rank reaches p% of the count (the nearest-rank percentile), so no database needs
a percentile function of its own.

The route and the key are span attributes the gateway writes (``opsloop.gateway.route``,
``opsloop.gateway.key_id``), read from the span's JSON attributes only where the text holds the
attribute's name. Python's ``json`` writes non-finite numbers as ``NaN`` and ``Infinity``,
which neither database parses; those tokens are read as ``null`` first.

**Sessions.** Traces that share a session id (``session.id``, ``gen_ai.conversation.id`` and
the other names :mod:`.semconv` reads) are one conversation: :func:`list_sessions` lists them by
latest activity, :func:`get_session` returns one with its traces in the order they happened.
"""

from __future__ import annotations

from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from sqlalchemy import String
from sqlalchemy import case
from sqlalchemy import cast
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.bounds import Int64
from opsloop.kernel.paging import Page
from opsloop.kernel.paging import decode_page_token
from opsloop.kernel.paging import split_page
from opsloop.kernel.timeutil import now_ms
from opsloop.llm.latest import latest_oldest_first
from opsloop.llm.tracing.entities import Trace
from opsloop.llm.tracing.services import trace_entities
from opsloop.llm.tracing.tables import SpanRow
from opsloop.llm.tracing.tables import TraceRow

__all__ = [
    "GROUP_BY",
    "KEY_ATTRIBUTE",
    "ROUTE_ATTRIBUTE",
    "SessionDetail",
    "SessionQuery",
    "SessionSummary",
    "StatsPoint",
    "StatsQuery",
    "StatsRow",
    "TraceStats",
    "get_session",
    "list_sessions",
    "trace_stats",
]

ROUTE_ATTRIBUTE = "opsloop.gateway.route"
KEY_ATTRIBUTE = "opsloop.gateway.key_id"
GROUP_BY = ("model", "route", "key", "user")
GroupBy = Literal["model", "route", "key", "user"]
_DAY_NS = 86_400 * 10**9
_BUCKETS_S = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400, 7 * 86_400)
_TARGET_BUCKETS = 60
MAX_BUCKETS = 1000
SESSION_TRACES = 500  # the most traces one session shows (its latest turns)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class StatsQuery(BaseModel):
    """What :func:`trace_stats` groups: a time range, a dimension and a bucket size."""

    model_config = ConfigDict(extra="forbid")

    by: GroupBy = Field("model", description="model, route, key or user")
    since_ns: Int64 | None = Field(None, description="calls started at or after; default a day ago")
    until_ns: Int64 | None = Field(None, description="calls started before; default now")
    bucket_s: int | None = Field(None, ge=1, description="bucket width; default ~60 buckets")
    max_groups: int = Field(8, ge=1, le=50, description="groups charted over time (most calls)")


class SessionQuery(BaseModel):
    """Which sessions :func:`list_sessions` lists: those with a trace started in
    ``[since_ns, until_ns)`` (and of ``user_id``), a page at a time. Unknown fields are ignored,
    so a REST listing passes over query parameters it does not know."""

    user_id: str | None = None
    since_ns: Int64 | None = None
    until_ns: Int64 | None = None
    max_results: int = Field(50, ge=1, le=1000)
    page_token: str | None = None


class StatsRow(_Model):
    """Calls of one group (``group`` None: calls without a value, such as no route)."""

    group: str | None
    calls: int
    errors: int
    error_rate: float
    input_tokens: int
    output_tokens: int
    cost: float
    p50_ms: float | None
    p95_ms: float | None


class StatsPoint(StatsRow):
    bucket_ns: int  # the bucket's start (ns since epoch)


class TraceStats(_Model):
    """LLM calls in ``[since_ns, until_ns)``: the total, each group (most calls first), and the
    ``max_groups`` busiest groups bucket by bucket (empty buckets are left out)."""

    by: str
    since_ns: int
    until_ns: int
    bucket_s: int
    total: StatsRow
    groups: list[StatsRow]
    series: list[StatsPoint]


class SessionSummary(_Model):
    session_id: str
    trace_count: int
    first_ns: int
    last_ns: int
    user_id: str | None  # the first user id in it (a conversation usually has one)
    user_count: int
    input_tokens: int
    output_tokens: int
    cost: float
    error_count: int


class SessionDetail(_Model):
    session: SessionSummary
    traces: list[Trace]  # oldest first


def _attribute(session: Session, name: str) -> Any:
    text = SpanRow.attributes
    odd = text.contains("NaN") | text.contains("Infinity")
    if session.get_bind().dialect.name == "postgresql":
        cleaned = func.regexp_replace(text, r"-?\mInfinity\M|\mNaN\M", "null", "g")
        value = cast(case((odd, cleaned), else_=text), JSONB)[name].astext
    else:
        cleaned = func.replace(func.replace(func.replace(text, "-Infinity", "null"),
                                            "Infinity", "null"), "NaN", "null")  # fmt: skip
        readable = case((func.json_valid(text) == 1, text), else_=cleaned)
        value = cast(func.json_extract(readable, f'$."{name}"'), String)
    return case((text.contains(f'"{name}"', autoescape=True), value), else_=None)


def _group(session: Session, by: str) -> Any:
    if by == "model":
        return SpanRow.model
    if by == "user":  # the call's own user, else its trace's (often set on the root span only)
        of_trace = select(TraceRow.user_id).where(TraceRow.trace_id == SpanRow.trace_id)
        return func.coalesce(SpanRow.user_id, of_trace.scalar_subquery())
    return _attribute(session, ROUTE_ATTRIBUTE if by == "route" else KEY_ATTRIBUTE)


def _bucket_s(since_ns: int, until_ns: int, asked: int | None) -> int:
    span_s = (until_ns - since_ns) / 1e9
    if asked is None:
        return next((b for b in _BUCKETS_S if span_s / b <= _TARGET_BUCKETS), _BUCKETS_S[-1])
    if span_s / asked > MAX_BUCKETS:
        raise InvalidInput(
            f"bucket_s={asked} cuts the range into more than {MAX_BUCKETS} buckets: "
            "choose a wider bucket or a shorter range"
        )
    return asked


def _aggregate(session: Session, where: list[Any], group: Any, bucket: Any) -> list[Any]:
    """Calls per (group, bucket) with their sums and nearest-rank p50/p95 durations."""
    window = {"partition_by": [group, bucket]}
    ranked = (
        select(
            group.label("grp"),
            bucket.label("bucket"),
            SpanRow.duration_ms.label("ms"),
            case((SpanRow.status == "error", 1), else_=0).label("failed"),
            func.coalesce(SpanRow.input_tokens, 0).label("tin"),
            func.coalesce(SpanRow.output_tokens, 0).label("tout"),
            func.coalesce(SpanRow.cost, 0.0).label("cost"),
            func.row_number().over(**window, order_by=SpanRow.duration_ms).label("rank"),
            func.count().over(**window).label("n"),
        )
        .where(*where)
        .subquery()
    )
    r = ranked.c

    def percentile(p: int) -> Any:
        return func.min(case((r.rank * 100 >= r.n * p, r.ms), else_=None))

    query = select(
        r.grp, r.bucket, func.count(), func.sum(r.failed), func.sum(r.tin), func.sum(r.tout),
        func.sum(r.cost), percentile(50), percentile(95),
    ).group_by(r.grp, r.bucket)  # fmt: skip
    return list(session.execute(query))


def _row(values: Any) -> dict[str, Any]:
    grp, _, calls, errors, tin, tout, cost, p50, p95 = values
    return {
        "group": None if grp is None else str(grp),
        "calls": int(calls),
        "errors": int(errors or 0),
        "error_rate": int(errors or 0) / int(calls),
        "input_tokens": int(tin or 0),
        "output_tokens": int(tout or 0),
        "cost": float(cost or 0.0),
        "p50_ms": None if p50 is None else float(p50),
        "p95_ms": None if p95 is None else float(p95),
    }


def trace_stats(session: Session, query: StatsQuery) -> TraceStats:
    """LLM calls grouped by ``query.by`` over the range, in total and bucket by bucket.

    Raises:
        InvalidInput: ``since_ns`` not before ``until_ns``, or a bucket that would cut the
            range into more than 1,000 buckets.
    """
    until_ns = query.until_ns if query.until_ns is not None else now_ms() * 10**6
    since_ns = query.since_ns if query.since_ns is not None else until_ns - _DAY_NS
    if since_ns >= until_ns:
        raise InvalidInput("since must be before until")
    bucket_s = _bucket_s(since_ns, until_ns, query.bucket_s)
    group = _group(session, query.by)
    where = [SpanRow.model.is_not(None), SpanRow.start_ns >= since_ns, SpanRow.start_ns < until_ns]
    everything = _aggregate(session, where, literal("all"), literal(0))
    empty = {"calls": 0, "errors": 0, "error_rate": 0.0, "input_tokens": 0, "output_tokens": 0,
             "cost": 0.0, "p50_ms": None, "p95_ms": None}  # fmt: skip
    total = StatsRow(**(_row(everything[0]) if everything else empty) | {"group": None})
    groups = sorted(
        (StatsRow(**_row(v)) for v in _aggregate(session, where, group, literal(0))),
        key=lambda g: (-g.calls, g.group is None, g.group or ""),
    )
    busiest = [g.group for g in groups[: query.max_groups]]
    series: list[StatsPoint] = []
    if busiest:
        named = [g for g in busiest if g is not None]
        chosen = group.in_(named) if named else literal(False)
        if None in busiest:
            chosen = chosen | group.is_(None)
        bucket = (SpanRow.start_ns - since_ns) // (bucket_s * 10**9)
        for v in _aggregate(session, [*where, chosen], group, bucket):
            start = since_ns + int(v[1]) * bucket_s * 10**9
            series.append(StatsPoint(**_row(v), bucket_ns=start))
        order = {g: i for i, g in enumerate(busiest)}
        series.sort(key=lambda p: (order[p.group], p.bucket_ns))
    return TraceStats(
        by=query.by, since_ns=since_ns, until_ns=until_ns, bucket_s=bucket_s, total=total,
        groups=groups, series=series,
    )  # fmt: skip


def _sessions_query() -> Any:
    t = TraceRow
    return select(
        t.session_id, func.count(), func.min(t.start_ns), func.max(t.end_ns), func.min(t.user_id),
        func.count(t.user_id.distinct()), func.sum(t.input_tokens), func.sum(t.output_tokens),
        func.sum(t.cost), func.sum(t.error_count),
    ).group_by(t.session_id)  # fmt: skip


def _summary(values: Any) -> SessionSummary:
    sid, count, first, last, user, users, tin, tout, cost, errors = values
    return SessionSummary(
        session_id=sid, trace_count=count, first_ns=first, last_ns=last, user_id=user,
        user_count=users, input_tokens=int(tin or 0), output_tokens=int(tout or 0),
        cost=float(cost or 0.0), error_count=int(errors or 0),
    )  # fmt: skip


def list_sessions(session: Session, query: SessionQuery) -> Page[SessionSummary]:
    """Sessions that ``query`` selects, the most recently active first. ``InvalidInput`` for a
    page token not handed out by a listing."""
    offset = decode_page_token(query.page_token)
    where = [TraceRow.session_id.is_not(None)]
    if query.user_id is not None:
        where.append(TraceRow.user_id == query.user_id)
    if query.since_ns is not None:
        where.append(TraceRow.start_ns >= query.since_ns)
    if query.until_ns is not None:
        where.append(TraceRow.start_ns < query.until_ns)
    listing = (
        _sessions_query()
        .where(*where)
        .order_by(func.max(TraceRow.start_ns).desc(), TraceRow.session_id)
        .offset(offset)
        .limit(query.max_results + 1)
    )
    rows, token = split_page(list(session.execute(listing)), offset, query.max_results)
    return Page(items=[_summary(r) for r in rows], next_page_token=token)


def get_session(session: Session, session_id: str) -> SessionDetail:
    """One conversation: its totals and its traces oldest first (the latest
    :data:`SESSION_TRACES` when it has more). ``NotFound`` when no trace carries the id."""
    found = session.execute(_sessions_query().where(TraceRow.session_id == session_id)).first()
    if found is None:
        raise NotFound(f"no trace has session id {session_id!r}")
    newest_first = (
        select(TraceRow)
        .where(TraceRow.session_id == session_id)
        .order_by(TraceRow.start_ns.desc(), TraceRow.trace_id)
    )
    rows = latest_oldest_first(session, newest_first, SESSION_TRACES)
    return SessionDetail(session=_summary(found), traces=trace_entities(session, rows))
