"""The request bodies of MLflow's tracking API (:mod:`.mlflow_api`), as its client sends them.

Protobuf JSON with snake_case names: int64 fields arrive as numbers or strings (pydantic takes
both), a run is named by ``run_id`` (or ``run_uuid``, from older clients). Fields opsloop has no
use for are ignored (:class:`.mlflow_protocol.MlflowRequest`), so a newer client keeps working.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic import model_validator

from opsloop.kernel.bounds import Int64
from opsloop.tracking.mlflow_protocol import KeyValue
from opsloop.tracking.mlflow_protocol import MlflowRequest

__all__ = [
    "CreateExperiment",
    "CreateRun",
    "ExperimentRef",
    "ExperimentTag",
    "LogBatch",
    "LogInputs",
    "LogMetric",
    "Metric",
    "RunKeyValue",
    "RunRef",
    "SearchExperiments",
    "SearchRuns",
    "UpdateExperiment",
    "UpdateRun",
]


class CreateExperiment(MlflowRequest):
    name: str
    artifact_location: str | None = None  # opsloop keeps artifacts in its blob store
    tags: list[KeyValue] | None = None


class ExperimentRef(MlflowRequest):
    experiment_id: str


class UpdateExperiment(ExperimentRef):
    new_name: str | None = None


class ExperimentTag(ExperimentRef, KeyValue):
    """An experiment's id, and the tag's key and value."""


class SearchExperiments(MlflowRequest):
    max_results: Int64 = 1000
    page_token: str | None = None
    filter: str | None = None
    order_by: list[str] | None = None
    view_type: str | None = None


class CreateRun(MlflowRequest):
    experiment_id: str = "0"
    user_id: str | None = None
    run_name: str | None = None
    start_time: Int64 | None = None
    tags: list[KeyValue] | None = None


class RunRef(MlflowRequest):
    run_id: str = ""
    run_uuid: str | None = None  # what MLflow 1.x clients send instead of run_id

    @model_validator(mode="after")
    def _either_id(self) -> RunRef:
        self.run_id = self.run_id or self.run_uuid or ""
        if not self.run_id:
            raise ValueError("run_id is required")
        return self


class UpdateRun(RunRef):
    status: str | None = None
    end_time: Int64 | None = None
    run_name: str | None = None


class RunKeyValue(RunRef, KeyValue):
    """A run's id, and a param's or tag's key and value."""


class Metric(MlflowRequest):
    key: str
    value: float
    timestamp: Int64
    step: Int64 = 0


class LogMetric(RunRef, Metric):
    """A run's id, and one metric point."""


class LogBatch(RunRef):
    metrics: list[Metric] | None = None
    params: list[KeyValue] | None = None
    tags: list[KeyValue] | None = None


class LogInputs(RunRef):
    datasets: list[dict[str, Any]] | None = None


class SearchRuns(MlflowRequest):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str | None = None
    run_view_type: str | None = None
    max_results: Int64 = 1000
    order_by: list[str] | None = None
    page_token: str | None = None
