"""The monitor pages: every monitor with where its loop stands, and one monitor's open alerts
(acknowledge, resolve), its reference history (revert), its checks with their drift reports,
and its loop runs step by step."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from opsloop.errors import InvalidInput
from opsloop.kernel.identity import current_user
from opsloop.monitoring import alerts, loop, references, services
from opsloop.monitoring.tables import MonitorRow
from opsloop.web.deps import ReadSession, State
from opsloop.web.search import find_by_name
from opsloop.web.shell import UiDomain

__all__ = ["UI", "router"]

router = APIRouter(include_in_schema=False)


UI = UiDomain(
    key="monitors",
    title="Monitors",
    href="/monitors",
    package="opsloop.monitoring",
    find=find_by_name("monitor", MonitorRow.name, "/monitors", MonitorRow.deployment),
)


@router.get("/monitors")
def monitors_page(request: Request, session: ReadSession) -> Response:
    return UI.page(request, "monitors.html", "Monitors", loops=loop.loop_status(session))


@router.get("/monitors/{name}")
def monitor_page(request: Request, name: str, session: ReadSession) -> Response:
    monitor = services.get_monitor(session, name)
    return UI.subpage(
        request,
        "monitor.html",
        name,
        monitor=monitor,
        runs=services.list_runs(session, name, 50),
        alerts=alerts.list_alerts(session, monitor=name, limit=50),
        references=references.list_references(session, name),
        status=next(
            s for s in loop.loop_status(session, monitor.deployment) if s["monitor"] == name
        ),
        loops=[
            r for r in loop.list_loop_runs(session, monitor.deployment, 20) if r.monitor == name
        ],
    )


@router.post("/monitors/{name}/alerts/{alert_id}/{action}")
async def alert_action(name: str, alert_id: str, action: str, state: State) -> Response:
    """Acknowledge or resolve an alert from the monitor page, then show the page again."""
    if action not in ("acknowledge", "resolve"):
        raise InvalidInput("the action is acknowledge or resolve")
    act = alerts.acknowledge if action == "acknowledge" else alerts.resolve

    def apply() -> None:
        with state.store.write() as session:
            act(session, alert_id, current_user())

    await run_in_threadpool(apply)
    return RedirectResponse(f"/monitors/{quote(name)}", status_code=303)


@router.post("/monitors/{name}/references/{number}/revert")
async def revert_reference(name: str, number: int, state: State) -> Response:
    """Go back to reference entry ``number`` from the monitor page, then show the page again."""

    def apply() -> None:
        with state.store.write() as session:
            references.revert(session, name, current_user(), number)

    await run_in_threadpool(apply)
    return RedirectResponse(f"/monitors/{quote(name)}", status_code=303)
