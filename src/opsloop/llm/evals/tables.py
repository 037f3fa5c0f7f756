"""Eval runs, their per-cell results, and the rules that make a prompt label need a suite."""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy import Boolean
from sqlalchemy import Float
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from opsloop.store import columns as col
from opsloop.store.base import Base


class EvalRunRow(col.IdKey, Base):
    __tablename__ = "eval_runs"
    __table_args__ = (Index("ix_eval_runs_suite_created", "suite", "created_at"),)

    suite: Mapped[str] = mapped_column(String(250))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(250))
    threshold: Mapped[float] = mapped_column(Float)
    total: Mapped[int] = mapped_column(Integer)
    passed_count: Mapped[int] = mapped_column(Integer)
    pass_rate: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool] = mapped_column(Boolean)
    duration_ms: Mapped[float] = mapped_column(Float)


class EvalResultRow(Base):
    __tablename__ = "eval_results"
    __table_args__ = (Index("ix_eval_results_prompt", "prompt_name", "prompt_version"),)

    run_id: Mapped[str] = col.owner_key("eval_runs")
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    prompt: Mapped[str] = mapped_column(String(300))
    prompt_name: Mapped[str | None] = mapped_column(String(250))
    prompt_version: Mapped[int | None] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(300))
    case: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    vars: Mapped[str] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    passed: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)
    cost: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    assertions: Mapped[str] = mapped_column(Text)
    trace_id: Mapped[str | None] = mapped_column(String(32))


class PromptLabelRuleRow(col.CreatedAt, Base):
    """Moving ``label`` of a prompt needs a run of ``suite`` where that version passed."""

    __tablename__ = "prompt_label_rules"

    prompt_name: Mapped[str] = mapped_column(String(250), primary_key=True)
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    suite: Mapped[str] = mapped_column(String(250))
    min_pass_rate: Mapped[float] = mapped_column(Float)
