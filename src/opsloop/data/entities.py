"""The shapes the data domain returns and accepts, the same from SDK, REST and CLI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import Field

from opsloop.kernel.entities import Entity
from opsloop.kernel.numbered import NumberedVersion

__all__ = [
    "ColumnChange",
    "DataDiff",
    "Dataset",
    "DatasetVersion",
    "FileChange",
    "LineageLink",
    "ManifestFiles",
    "TableColumn",
    "TableDiff",
    "TableInfo",
    "VersionCreate",
]


class TableColumn(Entity):
    """One column's type and summary statistics (min, max, mean, nulls, distinct, quartiles)."""

    name: str
    type: str
    stats: dict[str, float | int | str | None] = Field(default_factory=dict)


class TableInfo(Entity):
    """What a tabular version holds: its format, row count and columns."""

    format: str
    rows: int
    columns: list[TableColumn]


class DatasetVersion(NumberedVersion):
    version_id: str = Field(description="BLAKE3 hash of the canonical manifest")
    kind: str = Field(description="file, folder or table")
    message: str | None = None
    source: str | None = Field(None, description="the local path it was added from")
    file_count: int
    total_bytes: int
    table: TableInfo | None = None
    validation_status: str | None = Field(None, description="passed, failed or None")
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: list[str] = Field(default_factory=list)
    created_at: int
    created_by: str


class Dataset(Entity):
    name: str
    description: str | None = None
    created_at: int
    updated_at: int
    version_count: int
    latest: int | None = None
    aliases: dict[str, int] = Field(default_factory=dict)


class VersionCreate(BaseModel):
    """A new version: the manifest as ``[path, digest, size]`` rows plus what was learned."""

    files: list[tuple[str, str, int]] = Field(min_length=1)
    kind: str = Field(pattern="^(file|folder|table)$")
    message: str | None = None
    source: str | None = None
    table: TableInfo | None = None
    tags: dict[str, str] | None = None


class ManifestFiles(Entity):
    version: DatasetVersion
    files: list[tuple[str, str, int]]


class FileChange(Entity):
    path: str
    change: str = Field(description="added, removed or modified")
    old_size: int | None = None
    new_size: int | None = None


class ColumnChange(Entity):
    name: str
    change: str = Field(description="added, removed, type or stats")
    old_type: str | None = None
    new_type: str | None = None
    stats: dict[str, tuple[Any, Any]] = Field(
        default_factory=dict, description="statistic → (old, new), only those that changed"
    )


class TableDiff(Entity):
    old_rows: int
    new_rows: int
    columns: list[ColumnChange]


class DataDiff(Entity):
    old: str
    new: str
    added: int
    removed: int
    modified: int
    unchanged: int
    bytes_delta: int
    files: list[FileChange]
    table: TableDiff | None = None


class LineageLink(Entity):
    """Something one step from a version in the lineage graph, of any kind: upstream, what
    it came from (the run that produced it, the model version that predicted a batch output
    and the data it scored, the traces a feedback export holds); downstream, what used it
    (runs that read it, evaluations, batches that scored it). ``run_id`` is set for runs."""

    relation: str
    run_id: str | None = None
    created_at: int
    direction: str | None = None  # "upstream" | "downstream" (None from an older server)
    node_type: str = "run"  # run, model_version, dataset_version, trace, evaluation ...
    node_id: str = ""
    label: str = ""  # how people name it: "model churn@2", "run nightly (1a2b3c4d, FINISHED)"
    ref: str | None = None  # NAME@N for versions
