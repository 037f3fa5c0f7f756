"""Stored eval runs and their results, with the comparison against the suite's previous run."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

__all__ = ["Comparison", "EvalResult", "EvalRun", "EvalRunCreate"]


class EvalResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    prompt: str = Field(description="NAME@N of a registered prompt, or an inline prompt's id")
    prompt_name: str | None = None
    prompt_version: int | None = None
    provider: str
    case: str
    description: str
    vars: dict[str, Any]
    output: str | None
    passed: bool
    score: float
    latency_ms: float
    cost: float | None = None
    error: str | None = None
    assertions: list[dict[str, Any]] = Field(default_factory=list)
    trace_id: str | None = None


class EvalRunCreate(BaseModel):
    suite: str
    description: str | None = None
    threshold: float
    duration_ms: float
    results: list[EvalResult]


class Comparison(BaseModel):
    model_config = ConfigDict(frozen=True)

    previous_run_id: str
    previous_pass_rate: float
    regressions: list[str] = Field(description="cases that passed before and fail now")
    fixes: list[str] = Field(description="cases that failed before and pass now")


class EvalRun(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    suite: str
    description: str | None
    created_at: int
    created_by: str
    threshold: float
    total: int
    passed_count: int
    pass_rate: float
    passed: bool = Field(description="pass_rate reached the suite's threshold")
    duration_ms: float
    by_prompt: dict[str, float] = Field(description="pass rate per prompt x provider")
    comparison: Comparison | None = None
    results: list[EvalResult] | None = None
