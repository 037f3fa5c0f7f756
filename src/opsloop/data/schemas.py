"""Request and response bodies of the data REST API that are not entities themselves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import Field

from opsloop.data.entities import DatasetVersion
from opsloop.kernel.bounds import PositiveInt64

__all__ = ["AliasSet", "LineageCreate", "ValidationRecord", "VersionCreated"]


class VersionCreated(BaseModel):
    version: DatasetVersion
    created: bool = Field(description="False when the dataset already had these exact files")


class AliasSet(BaseModel):
    version: PositiveInt64 = Field(description="the version number the alias should point at")


class ValidationRecord(BaseModel):
    report: dict[str, Any]
    passed: bool


class LineageCreate(BaseModel):
    ref: str = Field(description="NAME@N, NAME@ALIAS or NAME (latest)")
    relation: str = Field(pattern="^(input|output)$")
