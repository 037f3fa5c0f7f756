"""Tracing tables: spans as they arrive, one summary row per trace, tags, scores and prices.

``spans`` is the source of truth and is written idempotently (primary key trace id + span
id), so a batch replayed from the ingest spool or resent by an exporter is harmless. ``traces``
is derived: after every batch the touched traces are re-summarised from their spans, which is
what makes a parent (or the root) that arrives after its children come out right.
"""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy import Float
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from opsloop.store import columns as col
from opsloop.store.base import Base

TRACE_ID = String(32)  # 16 bytes, lower-case hex, as W3C trace context writes it
SPAN_ID = String(16)  # 8 bytes


class SpanRow(Base):
    __tablename__ = "spans"
    # ix_spans_user: erasure finds one end user's traces (privacy.user_trace_ids) by span too
    __table_args__ = (
        Index("ix_spans_start", "start_ns"),
        Index("ix_spans_user", "user_id", "trace_id"),
    )

    trace_id: Mapped[str] = mapped_column(TRACE_ID, primary_key=True)
    span_id: Mapped[str] = mapped_column(SPAN_ID, primary_key=True)
    parent_span_id: Mapped[str | None] = mapped_column(SPAN_ID)
    name: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(16))
    start_ns: Mapped[int] = mapped_column(BigInteger)
    end_ns: Mapped[int] = mapped_column(BigInteger)
    duration_ms: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(8))  # ok, error, unset
    status_message: Mapped[str | None] = mapped_column(Text)
    service: Mapped[str | None] = mapped_column(String(250))
    model: Mapped[str | None] = mapped_column(String(250))
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    total_tokens: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[float | None] = mapped_column(Float)
    input: Mapped[str | None] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(String(250))
    session_id: Mapped[str | None] = mapped_column(String(250))
    prompt_name: Mapped[str | None] = mapped_column(String(250))
    prompt_version: Mapped[int | None] = mapped_column(Integer)
    attributes: Mapped[str] = mapped_column(Text)  # JSON object
    events: Mapped[str] = mapped_column(Text)  # JSON list


class TraceRow(Base):
    __tablename__ = "traces"
    __table_args__ = (
        Index("ix_traces_start", "start_ns"),
        Index("ix_traces_session", "session_id"),
        Index("ix_traces_user", "user_id"),
    )

    trace_id: Mapped[str] = mapped_column(TRACE_ID, primary_key=True)
    root_span_id: Mapped[str | None] = mapped_column(SPAN_ID)
    name: Mapped[str] = mapped_column(String(500))
    start_ns: Mapped[int] = mapped_column(BigInteger)
    end_ns: Mapped[int] = mapped_column(BigInteger)
    duration_ms: Mapped[float] = mapped_column(Float)
    span_count: Mapped[int] = mapped_column(Integer)
    error_count: Mapped[int] = mapped_column(Integer)
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    cost: Mapped[float] = mapped_column(Float)
    user_id: Mapped[str | None] = mapped_column(String(250))
    session_id: Mapped[str | None] = mapped_column(String(250))
    input: Mapped[str | None] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)


class TraceTagRow(Base):
    __tablename__ = "trace_tags"
    __table_args__ = (Index("ix_trace_tags_tag", "tag"),)

    trace_id: Mapped[str] = mapped_column(TRACE_ID, primary_key=True)
    tag: Mapped[str] = mapped_column(String(250), primary_key=True)


class ScoreRow(col.IdKey, col.CreatedAt, Base):
    """One judgement of a trace or of one of its spans, by a person, an evaluator or code."""

    __tablename__ = "scores"
    __table_args__ = (Index("ix_scores_trace", "trace_id"), Index("ix_scores_name", "name"))

    trace_id: Mapped[str] = mapped_column(TRACE_ID)
    span_id: Mapped[str | None] = mapped_column(SPAN_ID)
    name: Mapped[str] = mapped_column(String(250))
    data_type: Mapped[str] = mapped_column(String(12))  # numeric, boolean, categorical, text
    value: Mapped[float | None] = mapped_column(Float)
    string_value: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # human, api, eval
    author: Mapped[str] = mapped_column(String(250))


class ModelPriceRow(col.CreatedAt, Base):
    """A user's price for the models whose name matches ``pattern`` (overrides the defaults)."""

    __tablename__ = "model_prices"

    pattern: Mapped[str] = mapped_column(String(250), primary_key=True)
    input_per_mtok: Mapped[float] = mapped_column(Float)
    output_per_mtok: Mapped[float] = mapped_column(Float)
    per_request: Mapped[float] = mapped_column(Float)
