"""The eval gate after fine-tuning: the new version answers an eval suite beside the version it
would replace, and an alias moves to it only when every rule holds.

In the fine-tuning config::

    gate:
      suite: evals/support.yaml   # an eval suite: its prompts and cases (providers replaced)
      against: champion           # the output model's alias to compare with (skipped while unset)
      rules:
        - {metric: pass_rate, min: 0.8}
        - {metric: pass_rate, max_regression: 0.0}    # no worse than the champion
        - {metric: rouge, max_regression: 0.05}       # an assertion type's mean score
      alias: candidate            # moved to the new version when every rule passes

The suite's providers become the new version (``model:NAME@N``) and, when the alias exists,
the version it names; the first provider's ``config`` (``max_tokens``, ``temperature``)
applies to both, so both answer the same requests. The rules are the registry gates' rules
(:class:`~opsloop.evaluation.gates.GateRule`) over these metrics of each version's answers:
``pass_rate``, ``score`` (the mean case score), ``latency_p50_ms``, ``latency_p99_ms`` and the
mean score of each assertion type in the suite (``rouge``, ``similar``, ``icontains`` ...).
Without rules the gate asks for no regression in pass rate. The decision is on record: the
eval run holds every answer and score, and the fine-tuning run and the version are tagged with
the verdict and that eval run's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

import numpy as np
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import model_validator

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.evaluation.gates import GateRule
from opsloop.evaluation.gates import judge_rules
from opsloop.llm.evals.providers import ProviderConfig
from opsloop.llm.evals.suite import Suite
from opsloop.llm.evals.suite import load_suite

if TYPE_CHECKING:
    from opsloop.llm.evals.entities import EvalResult
    from opsloop.llm.evals.entities import EvalRun

__all__ = ["GATE_RUN_TAG", "GATE_TAG", "EvalGate", "GateOutcome", "gate_version"]

GATE_TAG = "opsloop.finetune.gate"
GATE_RUN_TAG = "opsloop.finetune.gate_run"
CANDIDATE, CHAMPION = "candidate", "champion"
_RUN_METRICS = ("pass_rate", "score", "latency_p50_ms", "latency_p99_ms")


class EvalGate(BaseModel):
    """The ``gate:`` section of a fine-tuning config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str = Field(min_length=1, description="an eval suite YAML file")
    against: str | None = Field(
        "champion", description="the output model's alias compared with; none: no comparison"
    )
    rules: list[GateRule] = Field(
        default_factory=lambda: [GateRule(metric="pass_rate", max_regression=0.0)]
    )
    alias: str | None = Field("candidate", description="moved to the new version on a pass")

    @model_validator(mode="after")
    def _metric_rules_only(self) -> EvalGate:
        if any(rule.slice_metric is not None for rule in self.rules):
            raise ValueError("an eval gate has no slices: give its rules a metric")
        if not self.rules:
            raise ValueError("rules is empty: name a rule, or leave rules out")
        return self

    def load(self) -> Suite:
        """The suite, checked with the rules: a rule on a metric the suite cannot give is
        refused here, before any training.

        Raises:
            InvalidInput: The suite cannot be read, or a rule names an unknown metric.
        """
        suite = load_suite(self.suite)
        known = set(_RUN_METRICS) | _assertion_types(suite)
        for rule in self.rules:
            if rule.name not in known:
                raise InvalidInput(
                    f"gate rule on unknown metric {rule.name!r}; this suite gives "
                    f"{', '.join(sorted(known))}"
                )
        return suite


@dataclass(frozen=True)
class GateOutcome:
    """What the gate decided, and the numbers it decided on."""

    passed: bool
    version: str
    against: str | None
    metrics: dict[str, float | None]
    against_metrics: dict[str, float | None] | None
    verdict: dict[str, Any]
    eval_run_id: str
    alias_moved: str | None


class SuiteRunner(Protocol):
    """Runs and stores a suite (``client.evals`` matches)."""

    def run(self, suite: Suite) -> EvalRun: ...


class VersionAliases(Protocol):
    """Reads and moves aliases of registered versions (``client.models`` matches)."""

    def version(self, ref: str) -> Any:
        """The version ``ref`` names (it has ``.ref``); ``NotFound`` when there is none."""
        ...

    def set_alias(self, ref: str, alias: str, *, reason: str | None = None) -> Any: ...


def gate_version(
    version: str, gate: EvalGate, suite: Suite, *, evals: SuiteRunner, models: VersionAliases
) -> GateOutcome:
    """Run ``suite`` on ``version`` (and on the version ``gate.against`` names), judge the
    rules, and move ``gate.alias`` to ``version`` when they all pass."""
    name = version.rpartition("@")[0]
    against = _against(name, gate.against, models)
    if against == version:
        against = None  # the alias is on the new version already: nothing to compare with
    options = suite.providers[0].config
    providers = [ProviderConfig(id=f"model:{version}", label=CANDIDATE, config=options)]
    if against is not None:
        providers.append(ProviderConfig(id=f"model:{against}", label=CHAMPION, config=options))
    run = evals.run(suite.model_copy(update={"providers": providers}))
    results = run.results or []
    metrics = _metrics([r for r in results if r.provider == CANDIDATE])
    champion = _metrics([r for r in results if r.provider == CHAMPION]) if against else None
    verdict = judge_rules(gate.rules, metrics, champion)
    moved = None
    if verdict["passed"] and gate.alias is not None:
        reason = f"passed the eval gate {suite.name!r} (eval run {run.run_id})"
        models.set_alias(version, gate.alias, reason=reason)
        moved = gate.alias
    return GateOutcome(
        passed=verdict["passed"],
        version=version,
        against=against,
        metrics=metrics,
        against_metrics=champion,
        verdict=verdict,
        eval_run_id=run.run_id,
        alias_moved=moved,
    )


def _against(name: str, alias: str | None, models: VersionAliases) -> str | None:
    if alias is None:
        return None
    try:
        return str(models.version(f"{name}@{alias}").ref)
    except NotFound:
        return None  # no champion yet: the comparative rules do not apply


def _assertion_types(suite: Suite) -> set[str]:
    types = {a.type for a in suite.defaults.assertions}
    return types | {a.type for test in suite.tests for a in test.assertions}


def _metrics(results: list[EvalResult]) -> dict[str, float | None]:
    """One version's numbers over its cases (``None`` where it answered none); an assertion
    type's mean is over the cases that got an answer to check (a failed call is in
    ``pass_rate`` and ``score`` as a failed case scoring 0)."""
    if not results:
        return dict.fromkeys(_RUN_METRICS)
    latencies = np.array([r.latency_ms for r in results])
    metrics: dict[str, float | None] = {
        "pass_rate": sum(r.passed for r in results) / len(results),
        "score": float(np.mean([r.score for r in results])),
        "latency_p50_ms": float(np.percentile(latencies, 50)),
        "latency_p99_ms": float(np.percentile(latencies, 99)),
    }
    scores: dict[str, list[float]] = {}
    for result in results:
        for outcome in result.assertions:
            scores.setdefault(outcome["type"], []).append(float(outcome["score"]))
    metrics.update({kind: float(np.mean(values)) for kind, values in scores.items()})
    return metrics
