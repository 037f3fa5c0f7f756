"""Traces as Arrow tables: the matching traces, or all their spans, with fixed schemas (a
column per field, scores and attributes as JSON), for ``opsloop traces export`` and
``GET /api/trace-exports``. pyarrow is imported here only, when an export is asked for: a
trace list or a lineage label never needs it.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.llm.tracing.entities import Span
from opsloop.llm.tracing.entities import TraceFilter
from opsloop.llm.tracing.services import trace_conditions
from opsloop.llm.tracing.services import trace_entities
from opsloop.llm.tracing.tables import SpanRow
from opsloop.llm.tracing.tables import TraceRow

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["export_table"]


def export_table(session: Session, flt: TraceFilter, what: str = "spans") -> pa.Table:
    """The matching traces (``what="traces"``) or all their spans as an Arrow table."""
    import pyarrow as pa

    if what not in ("spans", "traces"):
        raise InvalidInput(f"export what={what!r}: choose 'spans' or 'traces'")
    matching = select(TraceRow.trace_id).where(*trace_conditions(flt))
    if what == "traces":
        rows = session.scalars(
            select(TraceRow).where(TraceRow.trace_id.in_(matching)).order_by(TraceRow.start_ns)
        ).all()
        traces = trace_entities(session, list(rows))
        return pa.Table.from_pylist(
            [t.model_dump() | {"scores": json.dumps(t.scores)} for t in traces],
            schema=_schemas()[1],
        )
    columns = [getattr(SpanRow, c) for c in Span.model_fields]  # a span's fields are columns
    result = session.execute(
        select(*columns)
        .where(SpanRow.trace_id.in_(matching))
        .order_by(SpanRow.trace_id, SpanRow.start_ns)
        .execution_options(yield_per=10_000)
    )
    batches = [
        pa.RecordBatch.from_pylist([row._asdict() for row in part], schema=_schemas()[0])
        for part in result.partitions()
    ]
    return pa.Table.from_batches(batches, schema=_schemas()[0])


@cache
def _schemas() -> tuple[pa.Schema, pa.Schema]:
    """The Arrow schemas of exported spans and traces."""
    import pyarrow as pa

    return _span_schema(pa), _trace_schema(pa)


def _span_schema(pa: Any) -> pa.Schema:
    return pa.schema(
        [
            ("trace_id", pa.string()), ("span_id", pa.string()), ("parent_span_id", pa.string()),
            ("name", pa.string()), ("kind", pa.string()), ("start_ns", pa.int64()),
            ("end_ns", pa.int64()), ("duration_ms", pa.float64()), ("status", pa.string()),
            ("status_message", pa.string()), ("service", pa.string()), ("model", pa.string()),
            ("input_tokens", pa.int64()), ("output_tokens", pa.int64()),
            ("total_tokens", pa.int64()), ("cost", pa.float64()), ("input", pa.string()),
            ("output", pa.string()), ("user_id", pa.string()), ("session_id", pa.string()),
            ("prompt_name", pa.string()), ("prompt_version", pa.int64()),
            ("attributes", pa.string()), ("events", pa.string()),
        ]
    )  # fmt: skip


def _trace_schema(pa: Any) -> pa.Schema:
    return pa.schema(
        [
            ("trace_id", pa.string()), ("name", pa.string()), ("root_span_id", pa.string()),
            ("start_ns", pa.int64()), ("end_ns", pa.int64()), ("duration_ms", pa.float64()),
            ("span_count", pa.int64()), ("error_count", pa.int64()),
            ("input_tokens", pa.int64()), ("output_tokens", pa.int64()), ("cost", pa.float64()),
            ("user_id", pa.string()), ("session_id", pa.string()), ("tags", pa.list_(pa.string())),
            ("input", pa.string()), ("output", pa.string()), ("scores", pa.string()),
        ]
    )  # fmt: skip
