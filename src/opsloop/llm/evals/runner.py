"""Running a suite: every prompt x provider x case, in parallel, each model call traced.

Cases from data versions are expanded and every prompt's variables are checked against every
case before the first call, so a typo costs nothing. Calls run on ``concurrency`` threads with
a progress bar; each is recorded as an ``llm`` span (tagged ``eval`` and the suite's name, with
the prompt version), and its assertions are scored. A model that errors fails its case with
the error; it does not stop the run.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.kernel.refs import parse_ref
from opsloop.llm.evals.assertions import Assertion
from opsloop.llm.evals.assertions import Outcome
from opsloop.llm.evals.assertions import check
from opsloop.llm.evals.entities import EvalResult
from opsloop.llm.evals.entities import EvalRunCreate
from opsloop.llm.evals.ports import CaseData
from opsloop.llm.evals.ports import ChatModels
from opsloop.llm.evals.ports import PromptSource
from opsloop.llm.evals.ports import TraceSink
from opsloop.llm.evals.providers import Provider
from opsloop.llm.evals.suite import Case
from opsloop.llm.evals.suite import InlinePrompt
from opsloop.llm.evals.suite import Suite
from opsloop.llm.prompts.template import render
from opsloop.llm.prompts.template import variables_of
from opsloop.llm.tracing.pricing import ModelPrice
from opsloop.llm.tracing.pricing import PriceTable

if TYPE_CHECKING:
    from opsloop.llm.tracing.sdk import Tracer

__all__ = ["PromptUnderTest", "expand_cases", "resolve_prompts", "run_suite"]


@dataclass(frozen=True)
class PromptUnderTest:
    key: str
    name: str | None
    version: int | None
    text: str | None
    messages: list[dict[str, str]] | None
    variables: list[str]

    def render(self, variables: dict[str, Any]) -> str | list[dict[str, str]]:
        if self.text is not None:
            return render(self.text, variables)
        return [
            {"role": m["role"], "content": render(m["content"], variables)}
            for m in self.messages or []
        ]


def resolve_prompts(suite: Suite, prompts: PromptSource) -> list[PromptUnderTest]:
    """The suite's prompts: inline ones as written, registered ones read fresh from
    ``prompts`` (``NotFound`` for one that does not exist)."""
    out = []
    for spec in suite.prompts:
        if isinstance(spec, InlinePrompt):
            texts = (
                [spec.text]
                if spec.text is not None
                else [m["content"] for m in spec.messages or []]
            )
            out.append(
                PromptUnderTest(spec.id, None, None, spec.text, spec.messages, variables_of(texts))
            )
            continue
        ref = parse_ref(spec, "prompt")
        if ref.number is not None:
            prompt = prompts.get(ref.name, version=ref.number, cache_ttl=0)
        else:
            prompt = prompts.get(ref.name, label=ref.alias or "production", cache_ttl=0)
        messages = [m.model_dump() for m in prompt.messages] if prompt.messages else None
        out.append(
            PromptUnderTest(
                prompt.ref, prompt.name, prompt.version, prompt.text, messages, prompt.variables
            )
        )
    return out


def expand_cases(suite: Suite, data: CaseData) -> list[Case]:
    """The suite's cases, each ``data:`` test expanded into one case per row of its version."""
    cases = []
    defaults = suite.defaults
    for index, spec in enumerate(suite.tests):
        assertions = [*defaults.assertions, *spec.assertions]
        if spec.data is None:
            label = spec.description or f"case {index + 1}"
            cases.append(
                Case(
                    key=f"{index + 1}",
                    description=label,
                    vars={**defaults.vars, **spec.vars},
                    assertions=assertions,
                    threshold=spec.threshold,
                )
            )
            continue
        frame = data.get(spec.data).to_pandas()
        for row_number, row in enumerate(frame.to_dict(orient="records")):
            variables = {**defaults.vars, **spec.vars, **row}
            cases.append(
                Case(
                    key=f"{index + 1}.{row_number + 1}",
                    description=f"{spec.description or spec.data} row {row_number + 1}",
                    vars=variables,
                    assertions=assertions,
                    threshold=spec.threshold,
                )
            )
    return cases


def _check_variables(prompts: list[PromptUnderTest], cases: list[Case]) -> None:
    for prompt in prompts:
        for case in cases:
            missing = sorted(set(prompt.variables) - set(case.vars))
            if missing:
                raise InvalidInput(
                    f"prompt {prompt.key} needs variable(s) {', '.join(missing)} that "
                    f"{case.description!r} does not give"
                )


def _render_value(assertion: Assertion, variables: dict[str, Any]) -> Any:
    value = assertion.value
    if isinstance(value, str) and "{{" in value:
        return render(value, variables)
    return value


def _recorded(outcome: Outcome, assertion: Assertion, value: Any) -> dict[str, Any]:
    """The outcome with what it was checked against (the rendered value, the threshold), so
    a result says what was expected, not only whether it was met."""
    return {**outcome.to_dict(), "expected": value, "threshold": assertion.limit}


def _evaluate(
    prompt: PromptUnderTest,
    provider: Provider,
    case: Case,
    judge: Provider | None,
    prices: PriceTable,
    tracer: Tracer,
    suite_name: str,
) -> EvalResult:
    rendered = prompt.render(case.vars)
    with tracer.span(
        f"eval {suite_name}", kind="llm", input=rendered, tags=["eval", suite_name],
        metadata={"eval.case": case.description, "eval.provider": provider.config.name},
    ) as span:  # fmt: skip
        if prompt.name is not None and prompt.version is not None:
            span.use_prompt(f"{prompt.name}@{prompt.version}")
        completion = provider.complete(rendered, case.vars)
        provider.price(completion, prices)
        usage = {"input_tokens": completion.input_tokens, "output_tokens": completion.output_tokens}
        span.update(
            output=completion.output, model=completion.model, cost=completion.cost, usage=usage
        )
        if completion.error is not None:
            span.record_error(RuntimeError(completion.error))
    if completion.error is not None:
        outcomes, recorded = [], []
        passed, score = False, 0.0
    else:
        expected = [_render_value(a, case.vars) for a in case.assertions]
        outcomes = [
            check(a, value, completion, case.vars, judge)
            for a, value in zip(case.assertions, expected, strict=True)
        ]
        recorded = [
            _recorded(o, a, value)
            for o, a, value in zip(outcomes, case.assertions, expected, strict=True)
        ]
        weight = sum(o.weight for o in outcomes)
        score = sum(o.score * o.weight for o in outcomes) / weight if weight else 1.0
        if case.threshold is not None:
            passed = score >= case.threshold
        else:
            passed = all(o.passed for o in outcomes)
    return EvalResult(
        prompt=prompt.key,
        prompt_name=prompt.name,
        prompt_version=prompt.version,
        provider=provider.config.name,
        case=case.key,
        description=case.description,
        vars={
            k: v if isinstance(v, str | int | float | bool) or v is None else str(v)
            for k, v in case.vars.items()
        },
        output=completion.output,
        passed=passed,
        score=score,
        latency_ms=completion.latency_ms,
        cost=completion.cost,
        error=completion.error,
        assertions=recorded,
        trace_id=span.trace_id,
    )


def run_suite(
    suite: Suite,
    prompt_source: PromptSource,
    data: CaseData,
    traces: TraceSink,
    *,
    concurrency: int | None = None,
    on_result: Callable[[EvalResult], None] | None = None,
    models: ChatModels | None = None,
) -> EvalRunCreate:
    """Run every cell of ``suite``; results come back in prompt x provider x case order.
    ``models`` answers ``model:NAME@REF`` providers (and judges)."""
    prompts = resolve_prompts(suite, prompt_source)
    cases = expand_cases(suite, data)
    _check_variables(prompts, cases)
    providers = [Provider(p, models) for p in suite.providers]
    judge = Provider(suite.judge, models) if suite.judge else None
    if judge is None and any(a.type == "llm-rubric" for c in cases for a in c.assertions):
        raise InvalidInput("an llm-rubric assertion needs a judge: set `judge:` in the suite")
    prices = PriceTable(
        [ModelPrice(**p.model_dump()) for p in traces.prices() if p.source == "user"]
    )
    tracer = traces.tracer
    cells = list(itertools.product(prompts, providers, cases))
    start = time.perf_counter()

    def one(cell: tuple[PromptUnderTest, Provider, Case]) -> EvalResult:
        result = _evaluate(*cell, judge, prices, tracer, suite.name)
        if on_result is not None:
            on_result(result)
        return result

    with ThreadPoolExecutor(concurrency or suite.concurrency) as pool:
        results = list(pool.map(one, cells))
    traces.flush()
    return EvalRunCreate(
        suite=suite.name,
        description=suite.description,
        threshold=suite.threshold,
        duration_ms=(time.perf_counter() - start) * 1000,
        results=results,
    )
