"""The shapes the registry returns and accepts, the same from SDK, REST and CLI."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic import Field

from opsloop.kernel.entities import Entity
from opsloop.kernel.numbered import NumberedVersion
from opsloop.registry.signature import Signature
from opsloop.store.rows import from_row

__all__ = [
    "AliasEvent",
    "ModelVersion",
    "ModelVersionCreate",
    "RegisteredModel",
    "version_from_row",
]


class RegisteredModel(Entity):
    name: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: dict[str, int] = Field(default_factory=dict, description="alias → version number")
    latest_version: int | None = None
    gate_policy: dict[str, Any] | None = None
    created_at: int
    updated_at: int
    created_by: str


class ModelVersion(NumberedVersion):
    version_id: str
    package_id: str = Field(description="BLAKE3 hash of the package manifest")
    flavor: str
    task: str | None = None
    signature: Signature
    classes: list[Any] | None = None
    requirements: list[str] = Field(default_factory=list)
    source: str | None = Field(None, description="runs:/RUN_ID/PATH or the file it came from")
    run_id: str | None = None
    description: str | None = None
    card: dict[str, str] = Field(default_factory=dict, description="what people wrote")
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: list[str] = Field(default_factory=list)
    file_count: int
    total_bytes: int
    created_at: int
    created_by: str


class ModelVersionCreate(BaseModel):
    """Register a version: from a run's artifact folder, or from uploaded package files."""

    run_id: str | None = Field(None, description="the run that produced the model")
    artifact_path: str | None = Field(
        None, description="with run_id: the package folder among the run's artifacts"
    )
    files: list[tuple[str, str, int]] | None = Field(
        None, description="[path, digest, size] of package files already in the blob store"
    )
    source: str | None = None
    description: str | None = None
    tags: dict[str, str] | None = None
    card: dict[str, str] | None = None


class AliasEvent(Entity):
    """One decision about an alias, with the gate's report when a gate ran."""

    name: str
    alias: str
    kind: str = Field(description="set, delete, promoted, rejected or forced")
    from_number: int | None = None
    to_number: int | None = None
    moved: bool
    reason: str | None = None
    verdict: dict[str, Any] | None = None
    created_at: int
    created_by: str


def version_from_row(row: Any, name: str, tags: dict[str, str], aliases: list[str]) -> ModelVersion:
    """A version from its ``model_versions`` row (an ORM row, or a plain one's columns by
    name), its model's name and its labels; task, signature, classes and requirements are
    what its package says of itself."""
    meta = json.loads(row.package)
    given = {k: meta[k] for k in ("task", "signature", "classes", "requirements") if k in meta}
    given.update(name=name, version_id=row.id, tags=tags, aliases=sorted(aliases))
    given["card"] = json.loads(row.card) if row.card else {}
    return from_row(ModelVersion, row, **given)
