"""The shapes tracking returns and accepts: the same objects from SDK, REST and CLI.

They are pydantic models so the REST API documents and validates them with no second copy,
and the HTTP client rebuilds exactly what the local backend returns. Field names follow
MLflow's where the concept is the same (``run.info.run_id``, ``run.data.metrics``).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from opsloop.kernel.bounds import Int64Item

__all__ = [
    "Artifact",
    "ArtifactSpec",
    "Experiment",
    "MetricBatch",
    "MetricHistory",
    "MetricSeries",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
]


class RunStatus(StrEnum):
    """Lifecycle of a run. FINISHED, FAILED and KILLED are terminal and set ``end_time``."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)


class Experiment(_Model):
    experiment_id: str
    name: str
    description: str | None = None
    lifecycle_stage: str = "active"
    created_at: int
    updated_at: int
    tags: dict[str, str] = Field(default_factory=dict)


class RunInfo(_Model):
    run_id: str
    experiment_id: str
    run_name: str
    status: RunStatus
    start_time: int
    end_time: int | None = None
    parent_run_id: str | None = None
    user_id: str
    notes: str | None = None
    lifecycle_stage: str = "active"


class RunData(_Model):
    """A run's params, tags, and the latest value (highest step) of each metric."""

    params: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)


class Run(_Model):
    info: RunInfo
    data: RunData = Field(default_factory=RunData)


class MetricSeries(BaseModel):
    """One metric's points, column by column (equal lengths)."""

    values: list[float]
    steps: list[Int64Item]
    timestamps: list[Int64Item]


class MetricBatch(BaseModel):
    """Metric points grouped by key, columnar: the wire and storage shape of metric logging."""

    series: dict[str, MetricSeries] = Field(default_factory=dict)

    def count(self) -> int:
        return sum(len(s.values) for s in self.series.values())


class MetricHistory(_Model):
    """Every logged point of one metric of one run, ordered by step then timestamp."""

    run_id: str
    key: str
    steps: list[int]
    values: list[float]
    timestamps: list[int]


class ArtifactSpec(BaseModel):
    """An artifact to attach to a run: its path in the run and the blob holding its bytes."""

    path: str
    digest: str
    size: int = Field(ge=0)


class Artifact(_Model):
    path: str
    digest: str
    size: int
    created_at: int
