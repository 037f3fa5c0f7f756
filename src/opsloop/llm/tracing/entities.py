"""The shapes tracing returns and accepts, the same from SDK, REST and CLI.

Times are nanoseconds since the epoch (OpenTelemetry's unit, so a 40 µs span keeps its
precision); durations are milliseconds.
"""

from __future__ import annotations

import re
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from opsloop.errors import InvalidInput
from opsloop.kernel.bounds import Int64

__all__ = [
    "IngestResult",
    "ModelPriceIn",
    "ModelPriceOut",
    "Score",
    "ScoreCreate",
    "ScoreFilter",
    "Span",
    "Trace",
    "TraceDetail",
    "TraceFilter",
    "children_by_parent",
]

ScoreType = Literal["numeric", "boolean", "categorical", "text"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Trace(_Model):
    """A trace's summary: its root span's name, input and output, and totals over its spans."""

    trace_id: str
    name: str
    root_span_id: str | None
    start_ns: int
    end_ns: int
    duration_ms: float
    span_count: int
    error_count: int
    input_tokens: int
    output_tokens: int
    cost: float
    user_id: str | None = None
    session_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    input: str | None = None
    output: str | None = None
    scores: dict[str, float | str | None] = Field(default_factory=dict)


class Span(_Model):
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    start_ns: int
    end_ns: int
    duration_ms: float
    status: str
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
    prompt_name: str | None = None
    prompt_version: int | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    events: list[dict[str, Any]] = Field(default_factory=list)


def children_by_parent(spans: list[Span]) -> dict[str | None, list[Span]]:
    """Spans grouped under their parent's id, in the given order; a span whose parent is not
    among them (still on its way, or the root) is grouped under None, so it shows as a root."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[Span]] = {}
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in ids else None
        children.setdefault(parent, []).append(span)
    return children


class Score(_Model):
    id: str
    trace_id: str
    span_id: str | None
    name: str
    data_type: ScoreType
    value: float | None
    string_value: str | None
    comment: str | None
    source: str
    author: str
    created_at: int


class TraceDetail(_Model):
    """A trace with all its spans (start order) and its scores."""

    trace: Trace
    spans: list[Span]
    scores: list[Score]


class IngestResult(_Model):
    accepted: int
    rejected: int = 0
    errors: list[str] = Field(default_factory=list)
    spooled: bool = False


class ScoreCreate(BaseModel):
    """A score to record. ``value`` is a number, a bool, or a string (categorical, text)."""

    trace_id: str
    name: str = Field(min_length=1, max_length=250)
    value: float | bool | str
    span_id: str | None = None
    data_type: ScoreType | None = None
    comment: str | None = Field(None, max_length=10_000)
    source: Literal["human", "api", "eval"] = "api"


class ModelPriceIn(BaseModel):
    pattern: str = Field(description="regular expression that model names must fully match")
    input_per_mtok: float = Field(0.0, ge=0, description="price per million input tokens")
    output_per_mtok: float = Field(0.0, ge=0, description="price per million output tokens")
    per_request: float = Field(0.0, ge=0, description="price per call")


class ModelPriceOut(_Model):
    pattern: str
    input_per_mtok: float
    output_per_mtok: float
    per_request: float
    source: str


_SCORE_EXPR = re.compile(r"\s*([A-Za-z0-9_.\-]+)\s*(>=|<=|!=|=|>|<)\s*(.+?)\s*")


class ScoreFilter(_Model):
    name: str
    op: str
    value: float | str

    @classmethod
    def parse(cls, text: str) -> ScoreFilter:
        """``helpfulness>=0.5``, ``thumbs=true``, ``label=positive``."""
        match = _SCORE_EXPR.fullmatch(text)
        if match is None:
            raise InvalidInput(
                f"score filter {text!r} is not NAME OP VALUE (e.g. 'helpfulness>=0.5'); "
                "OP is one of = != > >= < <="
            )
        name, op, raw = match.groups()
        value: float | str
        if raw.lower() in ("true", "false"):
            value = 1.0 if raw.lower() == "true" else 0.0
        else:
            try:
                value = float(raw)
            except ValueError:
                value = raw.strip("'\"")
                if op not in ("=", "!="):
                    raise InvalidInput(
                        f"score filter {text!r} compares text with {op}: use = or !="
                    ) from None
        return cls(name=name, op=op, value=value)


class TraceFilter(BaseModel):
    """What ``list`` and ``export`` select; every field narrows, None means any."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="substring of the trace name, any case")
    user_id: str | None = None
    session_id: str | None = None
    tags: list[str] = Field(default_factory=list, description="traces carrying all of these")
    since_ns: Int64 | None = Field(None, description="started at or after (ns since epoch)")
    until_ns: Int64 | None = Field(None, description="started before (ns since epoch)")
    min_cost: float | None = None
    max_cost: float | None = None
    min_latency_ms: float | None = None
    max_latency_ms: float | None = None
    error: bool | None = Field(None, description="true: only traces with a failed span")
    scores: list[str] = Field(default_factory=list, description="e.g. helpfulness>=0.5")
    prompt: str | None = Field(None, description="used this prompt: NAME or NAME@N")
    model: str | None = Field(None, description="a span called this model")

    def query_params(self) -> dict[str, Any]:
        """This filter as REST query parameters (lists repeat the key)."""
        return {k: v for k, v in self.model_dump().items() if v not in (None, [])}
