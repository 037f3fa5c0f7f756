"""Request bodies of the registry REST API that are not entities themselves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import Field

from opsloop.kernel.bounds import PositiveInt64
from opsloop.tracking.schemas import NamedCreate

__all__ = [
    "AliasMove",
    "EvaluationCreate",
    "ModelCreate",
    "ModelUpdate",
    "PromotionRequest",
    "VersionUpdate",
]


class ModelCreate(NamedCreate):
    pass


class ModelUpdate(BaseModel):
    description: str | None = None
    gate_policy: dict[str, Any] | None = Field(
        None, description="the gate promotions use when they name none (see the docs)"
    )


class VersionUpdate(BaseModel):
    description: str | None = None
    card: dict[str, str] | None = Field(
        None, description="model card sections people write: intended_use, limitations, ..."
    )


class AliasMove(BaseModel):
    version: PositiveInt64 = Field(description="the version number the alias should point at")
    reason: str | None = None


class PromotionRequest(BaseModel):
    alias: str = "champion"
    policy: dict[str, Any] | None = Field(None, description="default: the model's stored policy")
    force: bool = False
    reason: str | None = Field(None, description="required with force; always recorded")


class EvaluationCreate(BaseModel):
    report: dict[str, Any]
    model_ref: str | None = None
    dataset_ref: str | None = None
