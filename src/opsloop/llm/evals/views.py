"""The eval pages: suite runs with pass rates and regressions, and one run's cases, each with
its inputs, what was expected, the output, every assertion (score, threshold, and for a failing
one its reason) and a link to the call's trace.

A case is judged by reading its input next to its output: "case 2 failed" alone sends the
reader to the YAML and the trace. Long values are collapsed behind a native ``<details>``
control (no script: the page's CSP allows none inline, and it works with JavaScript off).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.llm.evals import services
from opsloop.llm.evals.entities import EvalResult
from opsloop.llm.evals.tables import EvalRunRow
from opsloop.web.deps import ReadSession
from opsloop.web.shell import SearchHit
from opsloop.web.shell import UiDomain

__all__ = ["UI", "router"]

router = APIRouter(include_in_schema=False)


def _find(session: Session, text: str) -> list[SearchHit]:
    rows = session.execute(
        select(EvalRunRow.id, EvalRunRow.suite, EvalRunRow.pass_rate)
        .where(EvalRunRow.suite.icontains(text, autoescape=True) | (EvalRunRow.id == text))
        .order_by(EvalRunRow.created_at.desc())
        .limit(20)
    )
    return [
        SearchHit("eval run", suite, f"/evals/{rid}", f"{rate:.0%} passed")
        for rid, suite, rate in rows
    ]


UI = UiDomain(key="evals", title="Evals", href="/evals", package="opsloop.llm.evals", find=_find)


@router.get("/evals")
def runs_page(request: Request, session: ReadSession) -> Response:
    suite = request.query_params.get("suite") or None
    return UI.page(
        request, "runs.html", "Evals", runs=services.list_runs(session, suite, 200), suite=suite
    )


@router.get("/evals/{run_id}")
def run_page(request: Request, run_id: str, session: ReadSession) -> Response:
    run = services.get_run(session, run_id)
    cases = [_case(r) for r in run.results or []]
    return UI.subpage(request, "run.html", f"{run.suite} run", run=run, cases=cases)


LONG_CHARS = 160  # a value longer than this (or of more lines) is collapsed
LONG_LINES = 4
PREVIEW_CHARS = 100
# What a check compares the output with is the case's expected value, except for these, whose
# value is a bound on the call (shown with the check itself).
_BOUNDS = {"latency": "ms", "cost": "$"}


@dataclass(frozen=True)
class Shown:
    """A value as the page shows it: its whole text, and a one-line preview when it is long."""

    text: str
    preview: str | None = None


@dataclass(frozen=True)
class Check:
    type: str
    passed: bool
    score: float | None  # for scored checks (BLEU, similarity, ...); pass/fail ones have none
    bound: str  # "≥ 0.7", "≤ 1000 ms", or ""
    expected: Shown | None
    reason: Shown | None


@dataclass(frozen=True)
class CaseView:
    result: EvalResult
    inputs: list[tuple[str, Shown]]
    expected: list[tuple[str, Shown]]
    output: Shown | None
    checks: list[Check]


def _shown(value: Any) -> Shown:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    if len(text) <= LONG_CHARS and text.count("\n") < LONG_LINES:
        return Shown(text)
    first = text.strip().split("\n", 1)[0]
    return Shown(text, first[:PREVIEW_CHARS].rstrip() + "…")


def _g(value: Any) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def _check(raw: dict[str, Any]) -> Check:
    kind, threshold = str(raw.get("type", "")), raw.get("threshold")
    expected = raw.get("expected")
    bound = "" if threshold is None else f"≥ {_g(threshold)}"
    if kind in _BOUNDS:
        limit = expected if expected is not None else threshold
        unit = _BOUNDS[kind]
        bound = "" if limit is None else f"≤ {_g(limit)} ms" if unit == "ms" else f"≤ ${_g(limit)}"
        expected = None
    return Check(
        type=kind,
        passed=bool(raw.get("passed")),
        score=raw.get("score") if threshold is not None and kind not in _BOUNDS else None,
        bound=bound,
        expected=None if expected is None else _shown(expected),
        reason=_shown(raw["reason"]) if raw.get("reason") else None,
    )


def _case(result: EvalResult) -> CaseView:
    """What the run page shows of one result. The expected value is the case's ``expected``
    variable (the suites' convention) and every value an assertion compared the output with;
    results stored before assertions recorded their values show the variable only."""
    checks = [_check(a) for a in result.assertions]
    expected: list[tuple[str, Shown]] = []
    if "expected" in result.vars:
        expected.append(("expected", _shown(result.vars["expected"])))
    seen = {shown.text for _, shown in expected}
    for c in checks:
        if c.expected is not None and c.expected.text not in seen:
            seen.add(c.expected.text)
            expected.append((c.type, c.expected))
    inputs = [(k, _shown(v)) for k, v in result.vars.items() if k != "expected"]
    output = None if result.output is None else _shown(result.output)
    return CaseView(result, inputs, expected, output, checks)
