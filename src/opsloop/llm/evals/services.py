"""Eval services: store runs with their comparison to the suite's previous run, read them, and
decide whether a prompt version may take a label that requires a passing suite.

Every function takes an open session and never commits.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict

from sqlalchemy import delete
from sqlalchemy import desc
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.refs import check_alias
from opsloop.kernel.refs import check_name
from opsloop.kernel.timeutil import now_ms
from opsloop.llm.evals.entities import Comparison
from opsloop.llm.evals.entities import EvalResult
from opsloop.llm.evals.entities import EvalRun
from opsloop.llm.evals.entities import EvalRunCreate
from opsloop.llm.evals.tables import EvalResultRow
from opsloop.llm.evals.tables import EvalRunRow
from opsloop.llm.evals.tables import PromptLabelRuleRow
from opsloop.llm.rows import from_row
from opsloop.store.ids import resolve_id

__all__ = [
    "check_label_rule",
    "delete_label_rule",
    "get_run",
    "label_rules",
    "list_runs",
    "record_run",
    "set_label_rule",
]


def _cell(result: EvalResult | EvalResultRow) -> str:
    return f"{result.prompt} | {result.provider} | {result.case}"


def _results(session: Session, run_id: str) -> list[EvalResult]:
    rows = session.scalars(
        select(EvalResultRow).where(EvalResultRow.run_id == run_id).order_by(EvalResultRow.idx)
    )
    return [
        from_row(EvalResult, r, vars=json.loads(r.vars), assertions=json.loads(r.assertions))
        for r in rows
    ]


def _by_prompt(results: list[EvalResult]) -> dict[str, float]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        groups[f"{r.prompt} | {r.provider}"].append(r.passed)
    return {k: sum(v) / len(v) for k, v in groups.items()}


def _previous(session: Session, suite: str, before: int, exclude: str) -> EvalRunRow | None:
    return session.scalars(
        select(EvalRunRow)
        .where(EvalRunRow.suite == suite, EvalRunRow.created_at <= before, EvalRunRow.id != exclude)
        .order_by(desc(EvalRunRow.created_at))
        .limit(1)
    ).first()


def _compare(session: Session, row: EvalRunRow, results: list[EvalResult]) -> Comparison | None:
    previous = _previous(session, row.suite, row.created_at, row.id)
    if previous is None:
        return None
    before = {
        _cell(r): r.passed
        for r in session.scalars(select(EvalResultRow).where(EvalResultRow.run_id == previous.id))
    }
    now = {_cell(r): r.passed for r in results}
    return Comparison(
        previous_run_id=previous.id,
        previous_pass_rate=previous.pass_rate,
        regressions=sorted(k for k, ok in now.items() if not ok and before.get(k) is True),
        fixes=sorted(k for k, ok in now.items() if ok and before.get(k) is False),
    )


def _run(session: Session, row: EvalRunRow, with_results: bool) -> EvalRun:
    results = _results(session, row.id)
    return from_row(
        EvalRun, row, run_id=row.id, by_prompt=_by_prompt(results),
        comparison=_compare(session, row, results), results=results if with_results else None,
    )  # fmt: skip


def record_run(session: Session, body: EvalRunCreate, created_by: str) -> EvalRun:
    if not body.results:
        raise InvalidInput("an eval run needs at least one result")
    passed = sum(r.passed for r in body.results)
    rate = passed / len(body.results)
    row = EvalRunRow(
        id=uuid.uuid4().hex, suite=check_name(body.suite, "eval suite"),
        description=body.description, created_at=now_ms(), created_by=created_by,
        threshold=body.threshold, total=len(body.results), passed_count=passed, pass_rate=rate,
        passed=rate >= body.threshold, duration_ms=body.duration_ms,
    )  # fmt: skip
    session.add(row)
    session.flush()
    session.execute(
        EvalResultRow.__table__.insert(),
        [
            {
                "run_id": row.id,
                "idx": i,
                **dict(r),  # an EvalResult names exactly the row's other columns
                "vars": json.dumps(r.vars, default=str),
                "assertions": json.dumps(r.assertions, default=str),
            }
            for i, r in enumerate(body.results)
        ],
    )
    return _run(session, row, with_results=True)


def get_run(session: Session, run_id: str) -> EvalRun:
    """One eval run with its results; ``run_id`` may be a unique prefix (6+ characters)."""
    row = session.get(EvalRunRow, resolve_id(session, EvalRunRow.id, run_id, "eval run"))
    if row is None:
        raise NotFound(f"eval run {run_id} does not exist")
    return _run(session, row, with_results=True)


def list_runs(session: Session, suite: str | None = None, limit: int = 50) -> list[EvalRun]:
    query = select(EvalRunRow).order_by(desc(EvalRunRow.created_at)).limit(limit)
    if suite is not None:
        query = query.where(EvalRunRow.suite == suite)
    return [_run(session, row, with_results=False) for row in session.scalars(query)]


# -- label rules ------------------------------------------------------------------------------
def set_label_rule(
    session: Session, prompt_name: str, label: str, suite: str, min_pass_rate: float
) -> None:
    """From now on, ``prompt_name@label`` moves only to versions that passed ``suite``."""
    if not 0 <= min_pass_rate <= 1:
        raise InvalidInput(f"min_pass_rate must be within [0, 1], got {min_pass_rate}")
    from opsloop.llm.prompts.services import prompt_info

    prompt_info(session, prompt_name)  # NotFound for an unknown prompt
    row = session.get(PromptLabelRuleRow, (prompt_name, check_alias(label)))
    if row is None:
        row = PromptLabelRuleRow(prompt_name=prompt_name, label=label, created_at=now_ms())
        session.add(row)
    row.suite, row.min_pass_rate = check_name(suite, "eval suite"), min_pass_rate
    session.flush()


def delete_label_rule(session: Session, prompt_name: str, label: str) -> None:
    gone = session.execute(
        delete(PromptLabelRuleRow).where(
            PromptLabelRuleRow.prompt_name == prompt_name, PromptLabelRuleRow.label == label
        )
    )
    if gone.rowcount == 0:
        raise NotFound(f"no suite is required for {prompt_name}@{label}")


def label_rules(session: Session, prompt_name: str) -> dict[str, dict[str, float | str]]:
    rows = session.scalars(
        select(PromptLabelRuleRow).where(PromptLabelRuleRow.prompt_name == prompt_name)
    )
    return {r.label: {"suite": r.suite, "min_pass_rate": r.min_pass_rate} for r in rows}


def check_label_rule(session: Session, prompt_name: str, version: int, label: str) -> None:
    """``Conflict`` unless ``label`` is free of rules or the latest run of its suite that tried
    ``prompt_name@version`` passed it at the required rate."""
    rule = session.get(PromptLabelRuleRow, (prompt_name, label))
    if rule is None:
        return
    ref = f"{prompt_name}@{version}"
    latest = session.execute(
        select(EvalRunRow.id, EvalRunRow.created_at)
        .join(EvalResultRow, EvalResultRow.run_id == EvalRunRow.id)
        .where(
            EvalRunRow.suite == rule.suite,
            EvalResultRow.prompt_name == prompt_name,
            EvalResultRow.prompt_version == version,
        )
        .order_by(desc(EvalRunRow.created_at))
        .limit(1)
    ).first()
    if latest is None:
        raise Conflict(
            f"label {label!r} of prompt {prompt_name!r} requires a passing run of eval suite "
            f"{rule.suite!r}, and none has tried {ref}: run `opsloop eval run` on a suite "
            f"named {rule.suite!r} that includes {ref}"
        )
    outcomes = list(
        session.scalars(
            select(EvalResultRow.passed).where(
                EvalResultRow.run_id == latest.id,
                EvalResultRow.prompt_name == prompt_name,
                EvalResultRow.prompt_version == version,
            )
        )
    )
    rate = sum(outcomes) / len(outcomes)
    if rate < rule.min_pass_rate:
        raise Conflict(
            f"label {label!r} of prompt {prompt_name!r} requires {ref} to pass eval suite "
            f"{rule.suite!r} at {rule.min_pass_rate:.0%}; its latest run "
            f"({latest.id}) passed {rate:.0%} of its cases"
        )
