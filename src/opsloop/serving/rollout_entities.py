"""Rollout specs and states: steps (set a weight, pause for a time or a request count, analyse),
metric checks with thresholds, and a failure limit, in the style of Argo Rollouts."""

from __future__ import annotations

from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import model_validator

__all__ = ["Analysis", "Check", "Rollout", "RolloutSpec", "Step"]

Metric = Literal["error_rate", "latency_p50_ms", "latency_p99_ms", "accuracy", "mae", "rmse"]


class Step(BaseModel):
    """One of: ``{set_weight: 20}``, ``{pause: {seconds: 60, requests: 500}}`` (both must be
    met, and the analysis must pass), or ``{analysis: true}`` (analyse once, now)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    set_weight: float | None = Field(None, ge=0, le=100)
    pause_seconds: float | None = Field(None, ge=0)
    pause_requests: int | None = Field(None, ge=0)
    analysis: bool = False

    @model_validator(mode="after")
    def _one(self) -> Step:
        pause = self.pause_seconds is not None or self.pause_requests is not None
        kinds = [self.set_weight is not None, pause, self.analysis]
        if sum(kinds) != 1:
            raise ValueError(
                "a step is exactly one of set_weight, pause (seconds/requests), analysis"
            )
        return self


class Check(BaseModel):
    """A condition on the candidate's traffic in the current step; fewer than ``min_samples``
    requests (or labels, for quality metrics) is inconclusive, never a pass."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Metric
    min: float | None = None
    max: float | None = None
    min_samples: int = Field(20, ge=1)

    @model_validator(mode="after")
    def _bound(self) -> Check:
        if self.min is None and self.max is None:
            raise ValueError(f"check {self.metric}: give min, max or both")
        return self


class RolloutSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    candidate: int = Field(ge=1)
    steps: list[Step] = Field(min_length=1)
    checks: list[Check] = Field(default_factory=list)
    failure_limit: int = Field(0, ge=0, description="failed analyses tolerated before rollback")
    max_inconclusive_seconds: float = Field(
        600, gt=0, description="a step whose analysis stays inconclusive this long fails"
    )
    promote_alias: str | None = "champion"


class Analysis(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: int
    step: int
    verdict: Literal["pass", "fail", "inconclusive"]
    window: dict[str, Any]
    reasons: list[str] = Field(default_factory=list)


class Rollout(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    deployment: str
    spec: RolloutSpec
    status: str
    step: int
    failures: int
    analyses: list[Analysis]
    message: str | None = None
    created_at: int
    updated_at: int
