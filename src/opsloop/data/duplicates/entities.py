"""What a deduplication or an overlap check is asked, and what it answers (SDK, REST, CLI)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import Field

from opsloop.data.entities import DatasetVersion

__all__ = ["DedupRequest", "DedupResult", "OverlapRequest"]


class NearOptions(BaseModel):
    """MinHash-LSH settings shared by dedup and overlap (checked by the engine, so a bad value
    gets the same one-line message from the SDK, the CLI and REST)."""

    threshold: float = Field(0.8, description="Jaccard similarity (0, 1] that makes a duplicate")
    ngram: int = Field(5, description="words per shingle")
    num_perm: int = Field(128, description="MinHash permutations")
    verify: str = Field("exact", description="exact (shingle sets) or estimate (MinHash)")


class ExecutorOptions(BaseModel):
    """Where dedup and overlap run: here, or as Ray tasks (the exact and near search)."""

    executor: str = Field(
        "local", description="local, or ray (RAY_ADDRESS's cluster, else a local Ray)"
    )
    partitions: int | None = Field(
        None, description="ray: parts the rows are cut into (default: one per cluster CPU)"
    )


class DedupRequest(ExecutorOptions, NearOptions):
    """Deduplicate the text column of a table version into a new version."""

    ref: str = Field(description="the table version, NAME@N")
    column: str = "text"
    exact: bool = Field(True, description="drop rows whose normalised text is equal")
    near: bool = Field(True, description="drop near-duplicates (MinHash-LSH)")
    semantic: bool = Field(False, description="drop semantic duplicates (SemDeDup, embeddings)")
    eps: float = Field(0.05, description="semantic: cosine similarity above 1 - eps duplicates")
    substring: bool = Field(
        False,
        description="cut spans of min_length bytes or more repeated from earlier in the column "
        "(suffix array), after the row methods; rows left empty are dropped",
    )
    min_length: int = Field(100, description="substring: bytes of UTF-8 a repeated span spans")
    keep: str = Field("first", description="first, longest or best-scored")
    score_column: str | None = Field(None, description="numeric column for keep=best-scored")
    name: str | None = Field(None, description="dataset of the new version (default: the same)")
    message: str | None = None


class DedupResult(BaseModel):
    """The new version (None when no row was a duplicate) and the report stored with it."""

    source: str
    version: DatasetVersion | None = None
    created: bool = False
    report: dict[str, Any]


class OverlapRequest(ExecutorOptions, NearOptions):
    """Share of ``eval`` rows with an exact or near duplicate in ``train`` (on Ray, the
    ``partitions`` cut the train rows followed by the eval rows)."""

    train: str = Field(description="the training table version, NAME@N")
    eval: str = Field(description="the evaluation table version, NAME@N")
    column: str = "text"
    eval_column: str | None = Field(None, description="the eval table's column, if named apart")
    exact: bool = True
    near: bool = True
    max_rate: float | None = Field(None, description="fail when the share is above this")
