"""Shapes of annotation queues, review items and fine-tuning exports (SDK, REST, CLI)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from opsloop.llm.tracing.entities import ScoreType
from opsloop.llm.tracing.entities import TraceDetail
from opsloop.llm.tracing.entities import TraceFilter

__all__ = [
    "AnnotationItem",
    "FeedbackExport",
    "FeedbackExportResult",
    "Queue",
    "QueueCreate",
    "ReviewSubmit",
    "ScoreConfig",
]


class ScoreConfig(BaseModel):
    """A score reviewers give in a queue: its name, type, and (categorical) allowed values."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=250)
    data_type: ScoreType = "numeric"
    categories: list[str] = Field(default_factory=list)
    min: float | None = None
    max: float | None = None


class QueueCreate(BaseModel):
    name: str = Field(min_length=1, max_length=250)
    description: str | None = None
    scores: list[ScoreConfig] = Field(min_length=1)


class Queue(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str | None
    scores: list[ScoreConfig]
    created_at: int
    created_by: str
    counts: dict[str, int] = Field(default_factory=dict, description="items by status")


class AnnotationItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    queue: str
    trace_id: str
    status: str
    claimed_by: str | None = None
    completed_by: str | None = None
    created_at: int
    trace: TraceDetail | None = None


class ReviewSubmit(BaseModel):
    scores: dict[str, float | bool | str] = Field(min_length=1)
    comment: str | None = Field(None, max_length=10_000)


class FeedbackExport(BaseModel):
    """Turn rated traces into the next version of dataset ``dataset``.

    ``sft``: one chat (the trace's input messages plus its output as the assistant turn) per
    trace that ``filter`` selects (e.g. ``scores=["thumbs=true"]``). ``preference``: traces
    with the same input are paired, the best-scored output by ``score`` chosen and the worst
    rejected, when their scores differ by at least ``min_margin``.
    """

    dataset: str
    format: Literal["sft", "preference"] = "sft"
    filter: TraceFilter = Field(default_factory=TraceFilter)
    score: str | None = Field(None, description="preference: the score that ranks outputs")
    min_margin: float = Field(0.0, ge=0)
    message: str | None = None
    max_traces: int = Field(100_000, ge=1, le=1_000_000)


class FeedbackExportResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    ref: str = Field(description="the data version written, NAME@N")
    created: bool = Field(description="False when the same rows were exported before")
    format: str
    rows: int
    traces: int
