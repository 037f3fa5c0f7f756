"""Assertions on one output: deterministic checks and metric thresholds, each scored on [0, 1].

Every assertion has a ``type``, an optional ``value`` (rendered with the test's variables, so
``"{{ expected }}"`` works), a ``threshold`` for scored types, and a ``weight`` for the test's
weighted score. An unknown type is refused when the suite is read, with the nearest valid name.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import field_validator

from opsloop.errors import InvalidInput
from opsloop.llm.evals import metrics
from opsloop.llm.evals.judge import judge
from opsloop.llm.evals.providers import Completion
from opsloop.llm.evals.providers import Provider

__all__ = ["TYPES", "Assertion", "Outcome", "check"]

# type -> default threshold (None: a pass/fail check)
TYPES: dict[str, float | None] = {
    "equals": None, "contains": None, "icontains": None, "not-contains": None,
    "starts-with": None, "regex": None, "is-json": None, "json-schema": None,
    "latency": None, "cost": None,
    "bleu": 0.5, "rouge": 0.5, "similar": 0.75, "grounded": 1.0, "llm-rubric": 0.75,
}  # fmt: skip


class Assertion(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: str
    value: Any = None
    threshold: float | None = None
    weight: float = Field(1.0, ge=0)
    kind: str = Field("rougeL", description="rouge: rouge1, rouge2, rougeL, rougeLsum")

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in TYPES:
            near = difflib.get_close_matches(value, list(TYPES), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(
                f"unknown assertion type {value!r}{hint} Types: {', '.join(sorted(TYPES))}"
            )
        return value

    @property
    def limit(self) -> float | None:
        return self.threshold if self.threshold is not None else TYPES[self.type]


@dataclass
class Outcome:
    type: str
    passed: bool
    score: float
    weight: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "passed": self.passed, "score": self.score,
                "weight": self.weight, "reason": self.reason}  # fmt: skip


def _require(assertion: Assertion, value: Any) -> Any:
    if value is None:
        raise InvalidInput(f"assertion {assertion.type!r} needs a value")
    return value


def check(
    assertion: Assertion,
    value: Any,
    completion: Completion,
    variables: dict[str, Any],
    judge_provider: Provider | None,
) -> Outcome:
    """Score ``completion.output`` with ``assertion`` (``value`` already rendered)."""
    output = completion.output or ""
    kind, limit = assertion.type, assertion.limit

    def verdict(ok: bool, reason: str, score: float | None = None) -> Outcome:
        s = (1.0 if ok else 0.0) if score is None else score
        return Outcome(kind, ok, s, assertion.weight, "" if ok else reason)

    def scored(score: float, what: str) -> Outcome:
        assert limit is not None
        ok = score >= limit
        return Outcome(
            kind, ok, score, assertion.weight, "" if ok else f"{what} {score:.3f} < {limit}"
        )

    if kind == "equals":
        expected = _require(assertion, value)
        return verdict(
            output.strip() == str(expected).strip(), f"expected {expected!r}, got {output!r}"
        )
    if kind in ("contains", "icontains", "not-contains", "starts-with"):
        needle = str(_require(assertion, value))
        hay, probe = (output.lower(), needle.lower()) if kind == "icontains" else (output, needle)
        if kind == "starts-with":
            return verdict(output.startswith(needle), f"does not start with {needle!r}")
        found = probe in hay
        if kind == "not-contains":
            return verdict(not found, f"contains {needle!r}")
        return verdict(found, f"does not contain {needle!r}")
    if kind == "regex":
        pattern = str(_require(assertion, value))
        return verdict(re.search(pattern, output) is not None, f"does not match /{pattern}/")
    if kind in ("is-json", "json-schema"):
        try:
            parsed = json.loads(output)
        except ValueError as exc:
            return verdict(False, f"not JSON: {exc}")
        if kind == "is-json":
            return verdict(True, "")
        import jsonschema

        schema = _require(assertion, value)
        try:
            jsonschema.validate(parsed, schema)
        except jsonschema.ValidationError as exc:
            return verdict(False, f"schema: {exc.message}")
        return verdict(True, "")
    if kind == "latency":
        bound = float(_require(assertion, assertion.threshold if value is None else value))
        return verdict(
            completion.latency_ms <= bound, f"took {completion.latency_ms:.0f} ms > {bound:g} ms"
        )
    if kind == "cost":
        bound = float(_require(assertion, assertion.threshold if value is None else value))
        cost = completion.cost or 0.0
        return verdict(cost <= bound, f"cost ${cost:.6f} > ${bound:g}")
    if kind == "bleu":
        return scored(metrics.bleu([output], [str(_require(assertion, value))])[0], "BLEU")
    if kind == "rouge":
        reference = str(_require(assertion, value))
        return scored(metrics.rouge([output], [reference], assertion.kind)[0], assertion.kind)
    if kind == "similar":
        reference = str(_require(assertion, value))
        return scored(metrics.semantic_similarity([output], [reference])[0], "similarity")
    if kind == "grounded":
        context = value if value is not None else variables.get("context")
        result = metrics.groundedness([output], [str(_require(assertion, context))])[0]
        ok = result.score >= (limit or 1.0)
        reason = "" if ok else "unsupported: " + " | ".join(result.unsupported)
        return Outcome(kind, ok, result.score, assertion.weight, reason)
    # llm-rubric
    rubric = str(_require(assertion, value))
    if judge_provider is None:
        raise InvalidInput("llm-rubric needs a judge: set `judge:` (a provider) in the suite")
    question = str(variables.get("question") or variables.get("input") or "")
    graded = judge(judge_provider, rubric, question, output)
    if graded.score is None:
        return Outcome(kind, False, 0.0, assertion.weight, graded.reason)
    return scored(graded.score, f"judge ({graded.reason})")
