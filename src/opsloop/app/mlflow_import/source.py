"""What an MLflow store holds, as plain records every reader produces and the copier consumes.

Readers never raise for one bad row: they record a :class:`Skipped` (what, why) and go on, so
an import of a half-written store brings what it can and reports the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field
from typing import Protocol
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

__all__ = [
    "RUN_ID",
    "MetricPoints",
    "RunContent",
    "Skipped",
    "SourceDataset",
    "SourceExperiment",
    "SourceModel",
    "SourceReader",
    "SourceRun",
    "SourceVersion",
    "without_password",
]

RUN_ID = re.compile(r"^[0-9a-f]{32}$")  # an MLflow run id: what a reader takes for one


@dataclass(frozen=True)
class Skipped:
    """Something the import could not bring, and why (shown in the closing table)."""

    kind: str
    what: str
    reason: str


@dataclass
class SourceExperiment:
    experiment_id: str
    name: str
    artifact_location: str | None
    lifecycle_stage: str
    creation_time: int | None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SourceRun:
    run_id: str
    experiment_id: str
    name: str | None
    status: str
    start_time: int
    end_time: int | None
    user_id: str | None
    lifecycle_stage: str
    artifact_uri: str | None


@dataclass
class MetricPoints:
    """One metric's points in MLflow's order (step, timestamp), columnar."""

    steps: list[int] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, step: int, timestamp: int, value: float) -> None:
        self.steps.append(step)
        self.timestamps.append(timestamp)
        self.values.append(value)


@dataclass
class SourceDataset:
    """A dataset an MLflow run logged as an input (metadata only: MLflow keeps no bytes)."""

    name: str
    digest: str
    source_type: str
    source: str
    context: str | None


@dataclass
class RunContent:
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricPoints] = field(default_factory=dict)
    datasets: list[SourceDataset] = field(default_factory=list)

    @property
    def parent_run_id(self) -> str | None:
        return self.tags.get("mlflow.parentRunId") or None


@dataclass
class SourceVersion:
    version: int
    description: str | None
    source: str | None
    storage_location: str | None
    run_id: str | None
    creation_time: int | None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SourceModel:
    name: str
    description: str | None
    tags: dict[str, str] = field(default_factory=dict)
    versions: list[SourceVersion] = field(default_factory=list)
    aliases: dict[str, int] = field(default_factory=dict)


class SourceReader(Protocol):
    """One kind of MLflow store, read. ``skipped`` grows as rows turn out unreadable."""

    uri: str
    skipped: list[Skipped]

    def experiments(self) -> list[SourceExperiment]: ...

    def runs(self, experiment_ids: list[str]) -> list[SourceRun]: ...

    def run_contents(self, run_ids: list[str]) -> dict[str, RunContent]: ...

    def models(self) -> list[SourceModel]: ...

    def close(self) -> None: ...


def without_password(uri: str) -> str:
    """``uri`` with any password masked: what tags, tables and JSON show of a source."""
    try:
        parts = urlsplit(uri)
        if not parts.password:
            return uri
    except ValueError:
        return uri
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
