"""Evaluation gates: the policy a candidate must pass before an alias (``champion``) moves.

A policy, in YAML or as a dict::

    data: breast-cancer@1          # the dataset version both models are evaluated on
    target: target
    slices: [mean radius]          # columns to slice by (for slice rules)
    rules:
      - {metric: f1, min_improvement: 0.01}     # beats the champion by at least 0.01
      - {metric: accuracy, min: 0.9}
      - {metric: latency_p99_ms, max: 5}
      - {slice_metric: f1, max_regression: 0.02} # no slice worse than the champion's by more
    checks:
      - {name: radius-up, type: directional, column: mean radius,
         perturb: {multiply: 1.5}, expect: no_increase}
    prediction_regression: {max_changed_fraction: 0.1}

"Better" follows each metric's direction (lower is better for errors, losses and latency).
A rule naming a metric the task does not report is refused when the policy is read; a metric
that comes out missing (``roc_auc`` without probabilities) fails its rule, never passes it.
Rules that compare with the champion are "not applicable" while there is none.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError
from pydantic import model_validator

from opsloop.console.files import yaml_problem
from opsloop.errors import InvalidInput
from opsloop.evaluation.behaviour import BehaviourCheck
from opsloop.evaluation.metrics import LOWER_IS_BETTER
from opsloop.evaluation.metrics import known_metrics

__all__ = ["GatePolicy", "GateRule", "judge", "judge_rules", "load_policy", "verdict_rows"]


class GateRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str | None = None
    slice_metric: str | None = None
    min: float | None = None
    max: float | None = None
    min_improvement: float | None = None
    max_regression: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _shape(self) -> GateRule:
        if (self.metric is None) == (self.slice_metric is None):
            raise ValueError("a rule names exactly one of metric or slice_metric")
        bounds = [
            b
            for b in ("min", "max", "min_improvement", "max_regression")
            if getattr(self, b) is not None
        ]
        if not bounds:
            raise ValueError("a rule needs min, max, min_improvement or max_regression")
        if self.slice_metric is not None and bounds != ["max_regression"]:
            raise ValueError("a slice_metric rule takes max_regression only")
        return self

    @property
    def name(self) -> str:
        return self.metric or self.slice_metric  # type: ignore[return-value]

    def describe(self) -> str:
        if self.slice_metric:
            return f"no slice's {self.slice_metric} regresses by more than {self.max_regression}"
        bounds = (
            (">=", self.min),
            ("<=", self.max),
            ("beats the champion by >=", self.min_improvement),
            ("no worse than the champion by >", self.max_regression),
        )
        return " and ".join(f"{self.metric} {how} {v}" for how, v in bounds if v is not None)


class RegressionCheck(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_changed_fraction: float = Field(..., ge=0, le=1)


class GatePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data: str
    target: str
    task: str | None = None
    slices: list[str] = Field(default_factory=list)
    rules: list[GateRule] = Field(default_factory=list)
    checks: list[BehaviourCheck] = Field(default_factory=list)
    prediction_regression: RegressionCheck | None = None
    latency_samples: int = Field(200, ge=0, le=10_000)

    @classmethod
    def from_mapping(cls, raw: Any) -> GatePolicy:
        if not isinstance(raw, dict):
            raise InvalidInput("a gate policy is a mapping with data, target and rules")
        try:
            policy = cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise InvalidInput(
                f"invalid gate policy at {where or 'top level'}: {first['msg']}"
            ) from exc
        if not policy.rules and not policy.checks and policy.prediction_regression is None:
            raise InvalidInput("the gate policy has no rules, checks or prediction_regression")
        if policy.task is not None:
            policy.check_metrics(policy.task)
        return policy

    def check_metrics(self, task: str) -> None:
        """Refuse rules that name a metric ``task`` does not report."""
        known = known_metrics(task)
        for rule in self.rules:
            if rule.name not in known:
                raise InvalidInput(
                    f"the gate names unknown metric {rule.name!r} for {task}; known: {list(known)}"
                )

    def to_mapping(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True) | {
            "data": self.data,
            "target": self.target,
        }


def load_policy(source: str | Path | dict[str, Any] | GatePolicy) -> GatePolicy:
    """A policy from a YAML/JSON file, a mapping, or a policy."""
    if isinstance(source, GatePolicy):
        return source
    if isinstance(source, dict):
        return GatePolicy.from_mapping(source)
    import yaml

    path = Path(source)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read gate policy {path}: {exc.strerror or exc}") from exc
    try:
        return GatePolicy.from_mapping(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML: {yaml_problem(exc)}") from None


def _better(metric: str, candidate: float, champion: float) -> float:
    """How much better the candidate is (negative when worse), by the metric's direction."""
    return champion - candidate if metric in LOWER_IS_BETTER else candidate - champion


def _judge_rule(
    rule: GateRule, cand: dict[str, Any], champ: dict[str, Any] | None
) -> dict[str, Any]:
    out: dict[str, Any] = {"rule": rule.describe(), "metric": rule.name}
    if rule.slice_metric is not None:
        return _judge_slices(rule, cand, champ, out)
    value = cand["metrics"].get(rule.name)
    out["candidate"] = value
    if value is None:
        return out | {"passed": False, "detail": f"{rule.name} could not be computed"}
    failures = []
    if rule.min is not None and value < rule.min:
        failures.append(f"{value:.4g} < {rule.min}")
    if rule.max is not None and value > rule.max:
        failures.append(f"{value:.4g} > {rule.max}")
    comparative = rule.min_improvement is not None or rule.max_regression is not None
    if comparative:
        if champ is None:
            out["champion"] = None
            out["detail"] = "no champion yet: the comparison does not apply"
        else:
            base = champ["metrics"].get(rule.name)
            out["champion"] = base
            if base is None:
                failures.append(f"the champion's {rule.name} could not be computed")
            else:
                gain = _better(rule.name, value, base)
                out["improvement"] = gain
                if rule.min_improvement is not None and gain < rule.min_improvement:
                    failures.append(f"improvement {gain:+.4g} < {rule.min_improvement}")
                if rule.max_regression is not None and -gain > rule.max_regression:
                    failures.append(f"regression {-gain:.4g} > {rule.max_regression}")
    out["passed"] = not failures
    if failures:
        out["detail"] = "; ".join(failures)
    return out


def _judge_slices(
    rule: GateRule, cand: dict[str, Any], champ: dict[str, Any] | None, out: dict[str, Any]
) -> dict[str, Any]:
    metric = rule.slice_metric
    if not cand["slices"]:
        return out | {"passed": False, "detail": "the policy names no slices to compare"}
    if champ is None:
        return out | {"passed": True, "detail": "no champion yet: the comparison does not apply"}
    worst: dict[str, Any] | None = None
    compared = []
    for column, groups in cand["slices"].items():
        for label, numbers in groups.items():
            base = champ["slices"].get(column, {}).get(label, {}).get(metric)
            value = numbers.get(metric)
            if base is None or value is None:
                continue
            regression = -_better(metric, value, base)  # type: ignore[arg-type]
            item = {
                "column": column,
                "slice": label,
                "candidate": value,
                "champion": base,
                "regression": regression,
            }
            compared.append(item)
            if worst is None or regression > worst["regression"]:
                worst = item
    if worst is None:
        return out | {"passed": False, "detail": f"no slice has {metric} for both models"}
    passed = worst["regression"] <= rule.max_regression  # type: ignore[operator]
    out.update(passed=passed, worst_slice=worst, slices_compared=len(compared))
    if not passed:
        out["detail"] = (
            f"slice {worst['column']}={worst['slice']} regresses by {worst['regression']:.4g}"
        )
    return out


def judge(
    policy: GatePolicy,
    candidate: dict[str, Any],
    champion: dict[str, Any] | None,
    checks: list[dict[str, Any]],
) -> dict[str, Any]:
    """The verdict: every rule's and check's numbers, and whether all passed."""
    rules = [_judge_rule(rule, candidate, champion) for rule in policy.rules]
    passed = all(r["passed"] for r in rules) and all(c["passed"] for c in checks)
    return {"passed": passed, "rules": rules, "checks": checks}


def judge_rules(
    rules: list[GateRule],
    candidate: dict[str, float | None],
    champion: dict[str, float | None] | None,
) -> dict[str, Any]:
    """The verdict of metric rules alone, over two sets of numbers (an LLM eval gate: no
    slices, no behaviour checks), in :func:`judge`'s shape."""
    against = None if champion is None else {"metrics": champion}
    judged = [_judge_rule(rule, {"metrics": candidate}, against) for rule in rules]
    return {"passed": all(r["passed"] for r in judged), "rules": judged, "checks": []}


def verdict_rows(
    verdict: dict[str, Any], number: Callable[[Any], str]
) -> list[tuple[bool, str, str, str, str]]:
    """A verdict (what :func:`judge` returns) as the rows people read, one per rule and check:
    passed, what was judged, the candidate's and the champion's number, and the detail.
    ``number`` rounds each number for the page it lands on (a terminal table, a Markdown
    comment), so that the CLI and the CI report show one verdict the same way."""
    rows = [
        (
            rule["passed"],
            rule["rule"],
            number(rule.get("candidate")),
            number(rule.get("champion")),
            rule.get("detail", ""),
        )
        for rule in verdict.get("rules", [])
    ]
    for check in verdict.get("checks", []):
        rate = check.get("failure_rate", check.get("changed_fraction"))
        limit = check.get("max_failure_rate", check.get("max_changed_fraction"))
        detail = f"share failing {number(rate)} (max {number(limit)})"
        rows.append((check["passed"], f"check {check['name']}", number(rate), "", detail))
    return rows
