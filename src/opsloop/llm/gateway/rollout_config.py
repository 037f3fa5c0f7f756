"""A route's ``rollout`` section: canary or A/B between two of its targets, and the judge.

Example (in a route of ``gateway.yaml``)::

    rollout:
      baseline: gpt4o            # a target of this route: what serves today
      candidate: gpt5            # another target: what is being tried
      mode: canary               # canary: the share steps up; ab: a fixed split
      steps: [5, 25, 50, 100]    # canary: the candidate's % of the pair's traffic, step by step
      interval_s: 300            # judged this often; a pass moves to the next step
      judge:
        max_error_rate: 0.02
        max_p95_latency_ms: 4000
        min_score: 0.7           # mean of the scores on the candidate's traces
        min_calls: 50            # fewer calls than this in a window: inconclusive, never a pass
        assertions:              # online eval: run on a sample of answers, scored 0..1
          - {type: not-contains, value: "As an AI"}
        sample: 0.1

The checks mean exactly what a model deployment's rollout checks mean: both are judged by
:func:`opsloop.evaluation.canary.analyse`.
"""

from __future__ import annotations

from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator

__all__ = ["EVAL_SCORE", "Bound", "JudgeConfig", "RolloutConfig"]

EVAL_SCORE = "gateway-rollout-eval"  # the score name the online eval writes


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bound(BaseModel):
    """One threshold in the shape :func:`~opsloop.evaluation.canary.analyse` reads."""

    model_config = ConfigDict(frozen=True)

    metric: str
    min: float | None = None
    max: float | None = None
    min_samples: int = 1


class JudgeConfig(_Strict):
    """Thresholds on the candidate's own traffic since its share last changed.

    ``min_calls`` guards the error rate and the latency, ``min_scores`` the score: below them the
    judgment is inconclusive, and a step inconclusive for ``max_inconclusive_s`` fails.
    ``score_names`` picks which scores count (none given: every numeric or true/false score on
    the candidate's traces, so keep them on 0..1 like the online eval's).
    """

    max_error_rate: float | None = Field(None, ge=0, le=1)
    max_p95_latency_ms: float | None = Field(None, gt=0)
    min_score: float | None = None
    min_calls: int = Field(20, ge=1)
    min_scores: int = Field(10, ge=1)
    score_names: list[str] = Field(default_factory=list)
    assertions: list[dict[str, Any]] = Field(default_factory=list)
    sample: float = Field(0.1, gt=0, le=1, description="the share of answers the assertions run on")
    max_inconclusive_s: float = Field(3600, gt=0)

    @field_validator("assertions")
    @classmethod
    def _assertions(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Checked as the eval suites check them (imported only when a route has some: the
        metrics behind them are slow to import)."""
        if not value:
            return value
        from pydantic import ValidationError

        from opsloop.errors import validation_problems
        from opsloop.llm.evals.assertions import Assertion

        for i, raw in enumerate(value):
            try:
                checked = Assertion.model_validate(raw)
            except ValidationError as exc:
                raise ValueError(f"assertion {i}: " + "; ".join(validation_problems(exc))) from None
            if checked.type == "llm-rubric":
                raise ValueError("llm-rubric needs a judge model; the rollout judge has none")
        return value

    @model_validator(mode="after")
    def _something(self) -> JudgeConfig:
        bounds = (self.max_error_rate, self.max_p95_latency_ms, self.min_score)
        if all(b is None for b in bounds):
            raise ValueError("give at least one of max_error_rate, max_p95_latency_ms, min_score")
        if self.assertions and self.min_score is None:
            raise ValueError("assertions score the candidate: give min_score to judge by them")
        return self

    def bounds(self) -> list[Bound]:
        out = []
        if self.max_error_rate is not None:
            out.append(
                Bound(metric="error_rate", max=self.max_error_rate, min_samples=self.min_calls)
            )
        if self.max_p95_latency_ms is not None:
            out.append(
                Bound(
                    metric="latency_p95_ms", max=self.max_p95_latency_ms, min_samples=self.min_calls
                )
            )
        if self.min_score is not None:
            out.append(Bound(metric="score", min=self.min_score, min_samples=self.min_scores))
        return out


class RolloutConfig(_Strict):
    """Which two targets, how the traffic is split between them, and how they are judged.

    ``canary``: the candidate takes ``steps[0]`` % of the pair's traffic, then each next step
    after a judgment passes; a pass at the last step below 100 (or reaching 100) promotes it.
    ``ab``: the candidate takes ``split`` % for as long as it runs; judgments only roll it back
    (promoting the winner of an experiment is a person's call: ``opsloop gateway-routes
    rollout ROUTE --promote``). Any failed judgment sends the candidate's share to 0.
    """

    baseline: str = Field(min_length=1)
    candidate: str = Field(min_length=1)
    mode: Literal["canary", "ab"] = "canary"
    steps: list[float] = Field(default_factory=lambda: [5.0, 25.0, 50.0, 100.0], min_length=1)
    split: float = Field(50.0, gt=0, lt=100)
    interval_s: float = Field(60.0, gt=0)
    judge: JudgeConfig

    @model_validator(mode="after")
    def _check(self) -> RolloutConfig:
        if self.baseline == self.candidate:
            raise ValueError("baseline and candidate must be two different targets")
        if any(not 0 < s <= 100 for s in self.steps):
            raise ValueError("steps are percentages above 0 and at most 100")
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise ValueError("steps must rise: [5, 25, 50, 100]")
        given = self.model_fields_set
        if self.mode == "ab" and "steps" in given:
            raise ValueError("steps are for mode canary; an A/B test keeps split")
        if self.mode == "canary" and "split" in given:
            raise ValueError("split is for mode ab; a canary follows steps")
        return self

    def first_share(self) -> float:
        return self.steps[0] if self.mode == "canary" else self.split

    def describe(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "candidate": self.candidate, "mode": self.mode}
