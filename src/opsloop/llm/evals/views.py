"""The eval pages: suite runs with pass rates and regressions, and one run's cases with their
outputs, the assertions that failed and why, and a link to each call's trace."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.llm.evals import services
from opsloop.llm.evals.tables import EvalRunRow
from opsloop.web.deps import ReadSession
from opsloop.web.shell import SearchHit, UiDomain

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
    return UI.subpage(request, "run.html", f"{run.suite} run", run=run)
