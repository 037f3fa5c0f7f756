"""Request bodies of the tracking REST API (responses are the entities themselves)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import Field

from opsloop.kernel.bounds import Int64
from opsloop.tracking.entities import ArtifactSpec
from opsloop.tracking.entities import MetricBatch
from opsloop.tracking.entities import RunStatus

__all__ = [
    "ArtifactsRegister",
    "BlobDigests",
    "ExperimentCreate",
    "ExperimentUpdate",
    "LogBatch",
    "LogBatchResult",
    "NamedCreate",
    "RunCreate",
    "RunUpdate",
    "SearchRuns",
    "TagValue",
]


class NamedCreate(BaseModel):
    """The body that creates a named thing with a description and tags: an experiment, a
    registered model (each subclass keeps its own name in the OpenAPI document)."""

    name: str
    description: str | None = None
    tags: dict[str, str] | None = None


class ExperimentCreate(NamedCreate):
    pass


class ExperimentUpdate(BaseModel):
    name: str | None = None
    description: str | None = None


class TagValue(BaseModel):
    value: str


class RunCreate(BaseModel):
    experiment_id: str
    run_id: str | None = Field(None, description="Client-chosen id; makes retries idempotent.")
    run_name: str | None = None
    tags: dict[str, str] | None = None
    parent_run_id: str | None = None
    start_time: Int64 | None = None
    user_id: str | None = None


class RunUpdate(BaseModel):
    status: RunStatus | None = None
    end_time: Int64 | None = None
    run_name: str | None = None
    notes: str | None = None


class LogBatch(BaseModel):
    metrics: MetricBatch | None = None
    params: dict[str, Any] | None = None
    tags: dict[str, Any] | None = None


class LogBatchResult(BaseModel):
    metrics_logged: int


class SearchRuns(BaseModel):
    experiment_ids: list[str]
    filter: str | None = None
    order_by: list[str] | None = None
    max_results: Int64 = 1000
    page_token: str | None = None
    view: str = "active"


class ArtifactsRegister(BaseModel):
    artifacts: list[ArtifactSpec]


class BlobDigests(BaseModel):
    digests: list[str]
