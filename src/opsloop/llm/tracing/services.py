"""Tracing services: ingest spans, list and read traces, export them, score them, price them.

Every function takes an open session and never commits. Ingest is idempotent (a span already
stored is left as it is) and re-summarises each touched trace from its spans, so batches may
arrive in any order and any number of times.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.bounds import check_clause_count
from opsloop.kernel.paging import Page
from opsloop.kernel.paging import decode_page_token
from opsloop.kernel.paging import encode_page_token
from opsloop.kernel.refs import parse_ref
from opsloop.kernel.timeutil import now_ms
from opsloop.llm.rows import from_row
from opsloop.llm.tracing.entities import IngestResult
from opsloop.llm.tracing.entities import ModelPriceIn
from opsloop.llm.tracing.entities import ModelPriceOut
from opsloop.llm.tracing.entities import Score
from opsloop.llm.tracing.entities import ScoreCreate
from opsloop.llm.tracing.entities import ScoreFilter
from opsloop.llm.tracing.entities import Span
from opsloop.llm.tracing.entities import Trace
from opsloop.llm.tracing.entities import TraceDetail
from opsloop.llm.tracing.entities import TraceFilter
from opsloop.llm.tracing.pricing import DEFAULT_PRICES
from opsloop.llm.tracing.pricing import ModelPrice
from opsloop.llm.tracing.pricing import PriceTable
from opsloop.llm.tracing.pricing import check_pattern
from opsloop.llm.tracing.records import SpanRecord
from opsloop.llm.tracing.records import check_record
from opsloop.llm.tracing.tables import ModelPriceRow
from opsloop.llm.tracing.tables import ScoreRow
from opsloop.llm.tracing.tables import SpanRow
from opsloop.llm.tracing.tables import TraceRow
from opsloop.llm.tracing.tables import TraceTagRow

if TYPE_CHECKING:  # Arrow only for exports: a lineage label or a trace list never needs it
    pass
from opsloop.store.database import dialect_insert
from opsloop.store.ids import resolve_id

__all__ = [
    "add_score",
    "delete_price",
    "delete_score",
    "get_trace",
    "ingest",
    "list_prices",
    "list_scores",
    "list_traces",
    "set_price",
    "trace_conditions",
    "trace_entities",
    "trace_lineage_label",
]

_CHUNK = 500  # ids per IN (...) list: well under SQLite's variable limit


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# -- ingest -----------------------------------------------------------------------------------
def _span_values(r: SpanRecord) -> dict[str, Any]:
    return {
        "trace_id": r.trace_id,
        "span_id": r.span_id,
        "parent_span_id": r.parent_span_id,
        "name": r.name,
        "kind": r.kind,
        "start_ns": r.start_ns,
        "end_ns": r.end_ns,
        "duration_ms": (r.end_ns - r.start_ns) / 1e6,
        "status": r.status,
        "status_message": r.status_message,
        "service": r.service,
        "model": r.model,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "total_tokens": r.total_tokens,
        "cost": r.cost,
        "input": r.input,
        "output": r.output,
        "user_id": r.user_id,
        "session_id": r.session_id,
        "prompt_name": r.prompt_name,
        "prompt_version": r.prompt_version,
        "attributes": json.dumps(r.attributes, ensure_ascii=False, default=repr),
        "events": json.dumps(r.events, ensure_ascii=False, default=repr),
    }


def ingest(session: Session, records: Iterable[SpanRecord]) -> IngestResult:
    """Store valid spans (costed), skip ones already stored, report the ones refused."""
    prices = PriceTable(_user_prices(session))
    rows: list[dict[str, Any]] = []
    tags: set[tuple[str, str]] = set()
    errors: list[str] = []
    rejected = 0
    for record in records:
        why = check_record(record)
        if why is not None:
            rejected += 1
            if len(errors) < 10:
                errors.append(why)
            continue
        prices.apply(record)
        rows.append(_span_values(record))
        tags.update((record.trace_id, tag[:250]) for tag in record.tags)
    if rows:
        for chunk in _chunks(rows, 2000):
            session.execute(
                dialect_insert(session, SpanRow.__table__).on_conflict_do_nothing(), chunk
            )
        if tags:
            session.execute(
                dialect_insert(session, TraceTagRow.__table__).on_conflict_do_nothing(),
                [{"trace_id": t, "tag": g} for t, g in tags],
            )
        _summarise(session, sorted({row["trace_id"] for row in rows}))
    return IngestResult(accepted=len(rows), rejected=rejected, errors=errors)


def _summarise(session: Session, trace_ids: list[str]) -> None:
    """Recompute the ``traces`` rows of ``trace_ids`` from all their spans."""
    s = SpanRow
    for ids in _chunks(trace_ids):
        totals = session.execute(
            select(
                s.trace_id,
                func.min(s.start_ns),
                func.max(s.end_ns),
                func.count(),
                func.sum(case((s.status == "error", 1), else_=0)),
                func.coalesce(func.sum(s.input_tokens), 0),
                func.coalesce(func.sum(s.output_tokens), 0),
                func.coalesce(func.sum(s.cost), 0.0),
                func.max(s.user_id),
                func.max(s.session_id),
            )
            .where(s.trace_id.in_(ids))
            .group_by(s.trace_id)
        ).all()
        roots = {
            row.trace_id: row
            for row in session.execute(
                select(s.trace_id, s.span_id, s.name, s.input, s.output).where(
                    s.trace_id.in_(ids), s.parent_span_id.is_(None)
                )
            )
        }
        missing = [tid for tid in ids if tid not in roots]
        if missing:  # children came first: name the trace after its earliest span for now
            for row in session.execute(
                select(s.trace_id, s.span_id, s.name, s.input, s.output)
                .where(s.trace_id.in_(missing))
                .order_by(s.trace_id, s.start_ns)
            ):
                roots.setdefault(row.trace_id, row)
        values = []
        for tid, start, end, count, errs, tin, tout, cost, user, sess in totals:
            root = roots[tid]
            values.append(
                {
                    "trace_id": tid,
                    "root_span_id": root.span_id if tid not in missing else None,
                    "name": root.name,
                    "start_ns": start,
                    "end_ns": end,
                    "duration_ms": (end - start) / 1e6,
                    "span_count": count,
                    "error_count": errs,
                    "input_tokens": tin,
                    "output_tokens": tout,
                    "cost": cost,
                    "user_id": user,
                    "session_id": sess,
                    "input": root.input,
                    "output": root.output,
                }
            )
        insert = dialect_insert(session, TraceRow.__table__)
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["trace_id"],
                set_={k: insert.excluded[k] for k in values[0] if k != "trace_id"},
            ),
            values,
        )


# -- reading ----------------------------------------------------------------------------------
def _score_condition(flt: ScoreFilter) -> Any:
    column = ScoreRow.value if isinstance(flt.value, float) else ScoreRow.string_value
    ops = {
        "=": column == flt.value,
        "!=": column != flt.value,
        ">": column > flt.value,
        ">=": column >= flt.value,
        "<": column < flt.value,
        "<=": column <= flt.value,
    }
    return exists().where(
        ScoreRow.trace_id == TraceRow.trace_id, ScoreRow.name == flt.name, ops[flt.op]
    )


def trace_conditions(flt: TraceFilter) -> list[Any]:
    check_clause_count(len(flt.tags) + len(flt.scores), "a trace filter's tags and scores")
    t = TraceRow
    out: list[Any] = []
    if flt.name:
        out.append(t.name.icontains(flt.name, autoescape=True))
    if flt.user_id:
        out.append(t.user_id == flt.user_id)
    if flt.session_id:
        out.append(t.session_id == flt.session_id)
    if flt.since_ns is not None:
        out.append(t.start_ns >= flt.since_ns)
    if flt.until_ns is not None:
        out.append(t.start_ns < flt.until_ns)
    if flt.min_cost is not None:
        out.append(t.cost >= flt.min_cost)
    if flt.max_cost is not None:
        out.append(t.cost <= flt.max_cost)
    if flt.min_latency_ms is not None:
        out.append(t.duration_ms >= flt.min_latency_ms)
    if flt.max_latency_ms is not None:
        out.append(t.duration_ms <= flt.max_latency_ms)
    if flt.error is not None:
        out.append(t.error_count > 0 if flt.error else t.error_count == 0)
    for tag in flt.tags:
        out.append(exists().where(TraceTagRow.trace_id == t.trace_id, TraceTagRow.tag == tag))
    out.extend(_score_condition(ScoreFilter.parse(text)) for text in flt.scores)
    if flt.prompt:
        ref = parse_ref(flt.prompt, "prompt")
        used = [SpanRow.trace_id == t.trace_id, SpanRow.prompt_name == ref.name]
        if ref.number is not None:
            used.append(SpanRow.prompt_version == ref.number)
        out.append(exists().where(and_(*used)))
    if flt.model:
        out.append(exists().where(SpanRow.trace_id == t.trace_id, SpanRow.model == flt.model))
    return out


def trace_entities(session: Session, rows: list[TraceRow]) -> list[Trace]:
    ids = [row.trace_id for row in rows]
    tags: dict[str, list[str]] = {}
    scores: dict[str, dict[str, float | str | None]] = {}
    for chunk in _chunks(ids):
        for tid, tag in session.execute(
            select(TraceTagRow.trace_id, TraceTagRow.tag)
            .where(TraceTagRow.trace_id.in_(chunk))
            .order_by(TraceTagRow.tag)
        ):
            tags.setdefault(tid, []).append(tag)
        for tid, name, value, text in session.execute(
            select(ScoreRow.trace_id, ScoreRow.name, ScoreRow.value, ScoreRow.string_value)
            .where(ScoreRow.trace_id.in_(chunk))
            .order_by(ScoreRow.created_at)
        ):
            scores.setdefault(tid, {})[name] = value if value is not None else text
    return [
        from_row(Trace, row, tags=tags.get(row.trace_id, []), scores=scores.get(row.trace_id, {}))
        for row in rows
    ]


def list_traces(
    session: Session, flt: TraceFilter, max_results: int = 100, page_token: str | None = None
) -> Page[Trace]:
    """Traces matching ``flt``, newest first."""
    offset = decode_page_token(page_token)
    rows = list(
        session.scalars(
            select(TraceRow)
            .where(*trace_conditions(flt))
            .order_by(TraceRow.start_ns.desc(), TraceRow.trace_id)
            .offset(offset)
            .limit(max_results + 1)
        )
    )
    more = len(rows) > max_results
    rows = rows[:max_results]
    token = encode_page_token(offset + max_results) if more else None
    return Page(items=trace_entities(session, rows), next_page_token=token)


def _span(row: SpanRow) -> Span:
    return from_row(Span, row, attributes=json.loads(row.attributes), events=json.loads(row.events))


def _check_trace_id(session: Session, trace_id: str) -> str:
    """The full trace id of ``trace_id``: a full id or a unique prefix (at least 6 characters)."""
    if (
        not isinstance(trace_id, str)
        or not 0 < len(trace_id) <= 32
        or any(c not in "0123456789abcdef" for c in trace_id)
    ):
        raise InvalidInput(
            f"trace id {trace_id!r} is not 32 lower-case hex digits (or a unique prefix of them)"
        )
    return resolve_id(session, TraceRow.trace_id, trace_id, "trace")


def get_trace(session: Session, trace_id: str) -> TraceDetail:
    trace_id = _check_trace_id(session, trace_id)
    row = session.get(TraceRow, trace_id)
    if row is None:
        raise NotFound(f"trace {trace_id} does not exist (spans may still be on their way)")
    spans = session.scalars(
        select(SpanRow).where(SpanRow.trace_id == trace_id).order_by(SpanRow.start_ns)
    )
    return TraceDetail(
        trace=trace_entities(session, [row])[0],
        spans=[_span(s) for s in spans],
        scores=list_scores(session, trace_id=trace_id),
    )


# -- scores -----------------------------------------------------------------------------------
def _score(row: ScoreRow) -> Score:
    return from_row(Score, row)


def _score_value(body: ScoreCreate) -> tuple[str, float | None, str | None]:
    value, kind = body.value, body.data_type
    if isinstance(value, bool):
        kind = kind or "boolean"
        if kind != "boolean":
            raise InvalidInput(f"score {body.name!r}: a true/false value needs data_type boolean")
        return kind, float(value), None
    if isinstance(value, int | float):
        kind = kind or "numeric"
        if kind == "boolean" and value in (0, 1):
            return kind, float(value), None
        if kind != "numeric" or not math.isfinite(value):
            raise InvalidInput(f"score {body.name!r}: {value!r} is not a finite numeric score")
        return kind, float(value), None
    kind = kind or "categorical"
    if kind == "boolean" and value.lower() in ("true", "false"):
        return kind, float(value.lower() == "true"), None
    if kind == "numeric":
        raise InvalidInput(f"score {body.name!r}: {value!r} is not a number")
    if kind == "categorical" and len(value) > 250:
        raise InvalidInput(f"score {body.name!r}: a category is at most 250 characters")
    return kind, None, value


def add_score(session: Session, body: ScoreCreate, author: str) -> Score:
    """Record a score on a stored trace (and span); several scores may share a name."""
    trace_id = _check_trace_id(session, body.trace_id)
    if session.get(TraceRow, trace_id) is None:
        raise NotFound(f"trace {trace_id} does not exist; scores attach to stored traces")
    if body.span_id is not None and session.get(SpanRow, (trace_id, body.span_id)) is None:
        raise NotFound(f"span {body.span_id} is not part of trace {trace_id}")
    kind, value, text = _score_value(body)
    row = ScoreRow(
        id=uuid.uuid4().hex,
        trace_id=trace_id,
        span_id=body.span_id,
        name=body.name,
        data_type=kind,
        value=value,
        string_value=text,
        comment=body.comment,
        source=body.source,
        author=author,
        created_at=now_ms(),
    )
    session.add(row)
    session.flush()
    return _score(row)


def list_scores(
    session: Session, *, trace_id: str | None = None, name: str | None = None, limit: int = 10_000
) -> list[Score]:
    query = select(ScoreRow).order_by(ScoreRow.created_at).limit(limit)
    if trace_id is not None:
        query = query.where(ScoreRow.trace_id == _check_trace_id(session, trace_id))
    if name is not None:
        query = query.where(ScoreRow.name == name)
    return [_score(row) for row in session.scalars(query)]


def delete_score(session: Session, score_id: str) -> None:
    if session.execute(delete(ScoreRow).where(ScoreRow.id == score_id)).rowcount == 0:
        raise NotFound(f"score {score_id} does not exist")


# -- prices -----------------------------------------------------------------------------------
def _user_prices(session: Session) -> list[ModelPrice]:
    return [
        ModelPrice(r.pattern, r.input_per_mtok, r.output_per_mtok, r.per_request, "user")
        for r in session.scalars(select(ModelPriceRow))
    ]


def list_prices(session: Session) -> list[ModelPriceOut]:
    """User prices (most specific first), then the defaults, in the order they are tried."""
    table = PriceTable(_user_prices(session))
    return [ModelPriceOut(**p.__dict__) for p in table.prices]


def set_price(session: Session, body: ModelPriceIn) -> ModelPriceOut:
    """Create or replace the user price for ``body.pattern``; applies to spans ingested next."""
    values = body.model_dump() | {"pattern": check_pattern(body.pattern), "created_at": now_ms()}
    insert = dialect_insert(session, ModelPriceRow.__table__).values(values)
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["pattern"], set_={k: v for k, v in values.items() if k != "pattern"}
        )
    )
    return ModelPriceOut(**body.model_dump(), source="user")


def delete_price(session: Session, pattern: str) -> None:
    deleted = session.execute(delete(ModelPriceRow).where(ModelPriceRow.pattern == pattern))
    if deleted.rowcount == 0:
        defaults = {p.pattern for p in DEFAULT_PRICES}
        hint = (
            " (a default price cannot be deleted, only overridden)" if pattern in defaults else ""
        )
        raise NotFound(f"no user price for pattern {pattern!r}{hint}")


def trace_lineage_label(session: Session, trace_id: str) -> dict[str, Any]:
    """How a trace appears in a lineage walk: its name and short id."""
    row = session.get(TraceRow, trace_id)
    return {"label": f"trace {row.name} ({trace_id[:8]})"} if row is not None else {}
