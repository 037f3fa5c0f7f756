"""Deployments and traffic policies, the same from SDK, REST and CLI."""

from __future__ import annotations

import json
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import model_validator

from opsloop.kernel.entities import Entity

__all__ = [
    "Deployment",
    "DeploymentCreate",
    "DeploymentEvent",
    "Sticky",
    "TrafficPolicy",
    "deployment_from_row",
    "event_from_row",
]

Mode = Literal["single", "canary", "ab", "shadow"]


class Sticky(BaseModel):
    """Where an A/B assignment's key comes from: a request header or a cookie."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    header: str | None = None
    cookie: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Sticky:
        if (self.header is None) == (self.cookie is None):
            raise ValueError("sticky takes exactly one of header or cookie")
        return self


class TrafficPolicy(BaseModel):
    """Which versions get which requests.

    ``single``: everything to ``stable``. ``canary``: ``weight`` percent of requests (at random)
    to ``candidate``. ``ab``: the same split, but a user always lands on the same side (a hash
    of the ``sticky`` key). ``shadow``: every request is answered by ``stable`` and also sent,
    off the request path, to ``candidate``, whose answers are logged, never returned.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode = "single"
    stable: int = Field(ge=1, description="version number answering by default")
    candidate: int | None = Field(None, ge=1)
    weight: float = Field(0.0, ge=0, le=100, description="percent of traffic to candidate")
    sticky: Sticky | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TrafficPolicy:
        if self.mode == "single":
            if self.candidate is not None or self.weight:
                raise ValueError("a single policy has no candidate or weight")
        elif self.candidate is None:
            raise ValueError(f"a {self.mode} policy needs a candidate version")
        elif self.candidate == self.stable:
            raise ValueError("the candidate must differ from the stable version")
        if self.mode == "ab" and self.sticky is None:
            raise ValueError("an ab policy needs sticky: {header: NAME} or {cookie: NAME}")
        if self.mode != "ab" and self.sticky is not None:
            raise ValueError("sticky assignment applies to ab policies only")
        if self.mode == "shadow" and self.weight:
            raise ValueError("a shadow candidate answers no one: leave weight at 0")
        return self

    def versions(self) -> list[int]:
        return [self.stable] + ([self.candidate] if self.candidate is not None else [])

    def describe(self) -> str:
        if self.mode == "single":
            return f"all traffic to v{self.stable}"
        if self.mode == "shadow":
            return f"v{self.stable} answers, v{self.candidate} shadows"
        how = "sticky " if self.mode == "ab" else ""
        return f"{100 - self.weight:g}% v{self.stable}, {self.weight:g}% {how}v{self.candidate}"


class DeploymentCreate(BaseModel):
    name: str = Field(min_length=1, max_length=250)
    model: str = Field(description="the registered model's name")
    policy: TrafficPolicy
    description: str | None = None


class Deployment(Entity):
    name: str
    model: str
    policy: TrafficPolicy
    status: str
    revision: int
    description: str | None = None
    created_at: int
    updated_at: int
    created_by: str

    def ref(self, number: int) -> str:
        return f"{self.model}@{number}"


class DeploymentEvent(Entity):
    at: int
    actor: str
    action: str
    from_policy: dict[str, Any] | None = None
    to_policy: dict[str, Any] | None = None
    reason: str | None = None


def deployment_from_row(row: Any) -> Deployment:
    """The entity of a ``deployments`` row (an ORM row, or a plain one with the same names)."""
    return Deployment(
        name=row.name, model=row.model_name, policy=TrafficPolicy.model_validate_json(row.policy),
        status=row.status, revision=row.revision, description=row.description,
        created_at=row.created_at, updated_at=row.updated_at, created_by=row.created_by,
    )  # fmt: skip


def event_from_row(row: Any) -> DeploymentEvent:
    """The entity of a ``deployment_events`` row (ORM, or plain with the same names)."""
    return DeploymentEvent(
        at=row.at, actor=row.actor, action=row.action,
        from_policy=json.loads(row.from_policy) if row.from_policy else None,
        to_policy=json.loads(row.to_policy) if row.to_policy else None, reason=row.reason,
    )  # fmt: skip
