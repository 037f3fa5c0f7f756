"""The pipelines page: the triggers (what starts which pipeline, and what last fired it) with
their latest firings and the runs they started; a webhook trigger can be fired from here."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.pipelines import triggers
from opsloop.pipelines.tables import TriggerRow
from opsloop.server.deps import ReadSession, State
from opsloop.server.ui.shell import SearchHit, UiDomain, render

__all__ = ["UI", "router"]

router = APIRouter(include_in_schema=False)


def _find(session: Session, text: str) -> list[SearchHit]:
    rows = session.execute(
        select(TriggerRow.name, TriggerRow.pipeline)
        .where(TriggerRow.name.icontains(text, autoescape=True))
        .order_by(TriggerRow.name)
        .limit(20)
    )
    return [SearchHit("trigger", name, "/pipelines", target) for name, target in rows]


UI = UiDomain(
    key="pipelines", title="Pipelines", href="/pipelines", package="opsloop.pipelines", find=_find
)


@router.get("/pipelines")
def pipelines_page(request: Request, session: ReadSession) -> Response:
    found = triggers.list_triggers(session)
    firings = {t.name: triggers.list_firings(session, t.name, 5) for t in found}
    return render(
        request,
        "pipelines/pipelines.html",
        {"title": "Pipelines", "active": "pipelines", "triggers": found, "firings": firings},
    )


@router.post("/pipelines/triggers/{name}/fire")
async def fire_trigger(name: str, state: State) -> Response:
    """Fire a trigger from the page; the server's scheduler runs its pipeline."""

    def fire() -> None:
        with state.store.write() as session:
            triggers.fire(session, name, None, "fired from the web UI")

    await run_in_threadpool(fire)
    return RedirectResponse(f"/pipelines#trigger-{quote(name)}", status_code=303)
