"""``SpanRecord``: one finished span in opsloop's own terms, whatever sent it.

The SDK builds records directly; the OTLP decoder builds them from OpenTelemetry spans via
:mod:`opsloop.llm.tracing.semconv`. Ingest validates them (:func:`check_record`) and stores
them. Huge values are cut here, once, with a marker that says how much was left out, so that
one oversized prompt never costs the rest of its batch.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any

__all__ = ["KINDS", "MAX_VALUE_CHARS", "SpanRecord", "check_record", "to_text", "truncate"]

KINDS = ("span", "chain", "llm", "retriever", "tool", "agent", "embedding", "reranker",
         "guardrail", "evaluator")  # fmt: skip
MAX_VALUE_CHARS = 32_768
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(slots=True)
class SpanRecord:
    trace_id: str
    span_id: str
    name: str
    start_ns: int
    end_ns: int
    parent_span_id: str | None = None
    kind: str = "span"
    status: str = "unset"  # ok, error, unset
    status_message: str | None = None
    service: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cost: float | None = None
    input: str | None = None
    output: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    tags: list[str] = field(default_factory=list)
    prompt_name: str | None = None
    prompt_version: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def truncate(text: str | None, limit: int = MAX_VALUE_CHARS) -> str | None:
    """``text`` cut to ``limit`` characters with a marker naming what was dropped."""
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated {len(text) - limit} chars]"


def to_text(value: Any) -> str | None:
    """A span input or output as stored: strings as they are, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except ValueError:  # circular structures
        return repr(value)


def check_record(record: SpanRecord) -> str | None:
    """Why ``record`` cannot be stored, or None; cuts oversized values in place."""
    if not _TRACE_ID.fullmatch(record.trace_id) or record.trace_id == "0" * 32:
        return f"trace id {record.trace_id!r} is not 32 lower-case hex digits (non-zero)"
    if not _SPAN_ID.fullmatch(record.span_id) or record.span_id == "0" * 16:
        return f"span id {record.span_id!r} of trace {record.trace_id} is not 16 hex digits"
    if record.parent_span_id is not None and not _SPAN_ID.fullmatch(record.parent_span_id):
        return f"parent span id {record.parent_span_id!r} is not 16 hex digits"
    if not record.name:
        return f"span {record.span_id} has no name"
    if record.start_ns <= 0 or record.end_ns < record.start_ns:
        return (
            f"span {record.span_id} ends before it starts "
            f"(start {record.start_ns} ns, end {record.end_ns} ns)"
        )
    if record.kind not in KINDS:
        record.kind = "span"
    record.name = record.name[:500]
    record.input = truncate(record.input)
    record.output = truncate(record.output)
    record.status_message = truncate(record.status_message, 4096)
    for key, value in record.attributes.items():
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            record.attributes[key] = truncate(value)
    return None
