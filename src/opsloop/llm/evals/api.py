"""Evals' REST routes under ``/api``: eval runs, and the suites prompt labels require."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi import Query
from fastapi import status
from pydantic import BaseModel
from pydantic import Field

from opsloop.kernel.identity import current_user
from opsloop.llm.evals import routes
from opsloop.llm.evals import services
from opsloop.llm.evals.entities import EvalRun
from opsloop.llm.evals.entities import EvalRunCreate
from opsloop.web.deps import ReadSession
from opsloop.web.deps import WriteSession

router = APIRouter(tags=["evals"])


class LabelRule(BaseModel):
    suite: str = Field(description="the eval suite a version must pass to take the label")
    min_pass_rate: float = Field(1.0, ge=0, le=1)


@router.post(routes.RUNS.template, status_code=status.HTTP_201_CREATED)
def record_run(body: EvalRunCreate, session: WriteSession) -> EvalRun:
    """Store a finished suite run; the reply compares it with the suite's previous run."""
    return services.record_run(session, body, current_user())


@router.get(routes.RUNS.template)
def list_runs(
    session: ReadSession, suite: str | None = None, limit: int = Query(50, ge=1, le=1000)
) -> list[EvalRun]:
    return services.list_runs(session, suite, limit)


@router.get(routes.RUN.template)
def get_run(run_id: str, session: ReadSession) -> EvalRun:
    return services.get_run(session, run_id)


@router.get(routes.LABEL_RULES.template)
def label_rules(name: str, session: ReadSession) -> dict[str, dict[str, float | str]]:
    return services.label_rules(session, name)


@router.put(routes.LABEL_RULE.template, status_code=status.HTTP_204_NO_CONTENT)
def set_label_rule(name: str, label: str, body: LabelRule, session: WriteSession) -> None:
    """From now on the label moves only to versions that passed ``suite``."""
    services.set_label_rule(session, name, label, body.suite, body.min_pass_rate)


@router.delete(routes.LABEL_RULE.template, status_code=status.HTTP_204_NO_CONTENT)
def delete_label_rule(name: str, label: str, session: WriteSession) -> None:
    services.delete_label_rule(session, name, label)
