"""REST: ``/api/monitors``, ``/api/monitor-runs``, ``/api/alerts``, ``/api/loop``,
``/api/loop-runs`` and ``/api/drift-reports`` (ad hoc drift between two data versions); the
paths are in :mod:`opsloop.monitoring.routes`.

Creating and checking a monitor read models, deployments, data and the prediction log. The
server's serving runtime already reads deployments and models through a client on this store
and writes the prediction log, so the routes take those from it (``state.serving``), typed as
the ports monitoring declares (:mod:`opsloop.monitoring.ports`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from opsloop.kernel.bounds import NonNegativeInt64
from opsloop.kernel.identity import current_user
from opsloop.monitoring import alerts
from opsloop.monitoring import loop
from opsloop.monitoring import references
from opsloop.monitoring import routes
from opsloop.monitoring import services
from opsloop.monitoring.entities import Alert
from opsloop.monitoring.entities import LoopRun
from opsloop.monitoring.entities import Monitor
from opsloop.monitoring.entities import MonitorCreate
from opsloop.monitoring.entities import MonitorRebaseline
from opsloop.monitoring.entities import MonitorReference
from opsloop.monitoring.entities import MonitorRevert
from opsloop.monitoring.entities import MonitorRun
from opsloop.monitoring.ports import PredictionSource
from opsloop.monitoring.ports import Sources
from opsloop.web.deps import AppState
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State
from opsloop.web.deps import WriteSession

__all__ = ["router"]

router = APIRouter(tags=["monitoring"])


def _sources(state: AppState) -> Sources:
    """Models, deployments and data, read through the serving runtime's client."""
    sources: Sources = state.client
    return sources


def _predictions(state: AppState) -> PredictionSource:
    """The prediction log the serving runtime writes."""
    log: PredictionSource = state.serving.log
    return log


@router.post(routes.MONITORS.template, response_model=Monitor, status_code=201)
def create_monitor(body: MonitorCreate, state: State) -> Monitor:
    """Profile the reference data version and watch the deployment against it. A retraining
    policy whose pipeline this server would refuse to import is refused now (403)."""
    if body.spec.retrain is not None:
        state.code.check(body.spec.retrain.pipeline)
    sources = _sources(state)
    return services.create_monitor(
        state.store, body, current_user(), models=sources.models,
        deployments=sources.deployments, data=sources.data,
    )  # fmt: skip


@router.get(routes.MONITORS.template, response_model=list[Monitor])
def list_monitors(session: ReadSession, deployment: str | None = None) -> list[Monitor]:
    return services.list_monitors(session, deployment)


@router.get(routes.MONITOR.template, response_model=Monitor)
def get_monitor(name: str, session: ReadSession) -> Monitor:
    return services.get_monitor(session, name)


@router.delete(routes.MONITOR.template, status_code=204)
def delete_monitor(name: str, session: WriteSession) -> None:
    services.delete_monitor(session, name)


@router.get(routes.MONITOR_REFERENCES.template, response_model=list[MonitorReference])
def list_references(name: str, session: ReadSession) -> list[MonitorReference]:
    """The monitor's reference history, newest (current) first."""
    return references.list_references(session, name)


@router.post(routes.MONITOR_REFERENCES.template, response_model=MonitorReference, status_code=201)
def rebaseline(name: str, body: MonitorRebaseline, state: State) -> MonitorReference:
    """Re-baseline the monitor on a data version, profiled with the stable model."""
    sources = _sources(state)
    return references.rebaseline(
        state.store, name, body.reference, current_user(), body.reason, models=sources.models,
        deployments=sources.deployments, data=sources.data,
    )  # fmt: skip


@router.post(routes.MONITOR_REVERT.template, response_model=MonitorReference, status_code=201)
def revert_reference(name: str, body: MonitorRevert, session: WriteSession) -> MonitorReference:
    """Go back to an earlier reference (default: the one before the current one)."""
    return references.revert(session, name, current_user(), body.to, body.reason)


@router.post(routes.MONITOR_RUNS.template, response_model=MonitorRun)
def check_monitor(name: str, state: State) -> MonitorRun:
    """Check the monitor's window now."""
    models = _sources(state).models
    return services.run_monitor(state.store, _predictions(state), name, models=models)


@router.get(routes.MONITOR_RUNS.template, response_model=list[MonitorRun])
def list_runs(name: str, session: ReadSession, limit: NonNegativeInt64 = 20) -> list[MonitorRun]:
    return services.list_runs(session, name, limit)


@router.get(routes.MONITOR_RUN.template, response_model=MonitorRun)
def get_run(run_id: str, session: ReadSession) -> MonitorRun:
    return services.get_run(session, run_id)


@router.get(routes.MONITOR_RUN_REPORT.template, response_class=HTMLResponse)
def run_report(run_id: str, session: ReadSession) -> HTMLResponse:
    """The check's drift report as a self-contained HTML page."""
    from opsloop.errors import NotFound
    from opsloop.monitoring.report_html import render

    run = services.get_run(session, run_id)
    if not run.report:
        raise NotFound(f"monitor run {run_id} has no drift report ({run.message})")
    return HTMLResponse(render(run.report, title=f"{run.monitor}: drift of run {run_id[:8]}"))


@router.get(routes.ALERTS.template, response_model=list[Alert])
def list_alerts(
    session: ReadSession, status: str | None = None, deployment: str | None = None,
    monitor: str | None = None, limit: NonNegativeInt64 = 100,
) -> list[Alert]:  # fmt: skip
    return alerts.list_alerts(
        session, status=status, deployment=deployment, monitor=monitor, limit=limit
    )


@router.post(routes.ALERT_ACKNOWLEDGE.template, response_model=Alert)
def acknowledge(alert_id: str, session: WriteSession) -> Alert:
    return alerts.acknowledge(session, alert_id, current_user())


@router.post(routes.ALERT_RESOLVE.template, response_model=Alert)
def resolve(alert_id: str, session: WriteSession) -> Alert:
    return alerts.resolve(session, alert_id, current_user())


@router.get(routes.LOOP.template)
def loop_status(session: ReadSession, deployment: str | None = None) -> list[dict[str, Any]]:
    """Where each monitored deployment's loop stands, and why."""
    return loop.loop_status(session, deployment)


@router.get(routes.LOOP_RUNS.template, response_model=list[LoopRun])
def loop_runs(
    session: ReadSession, deployment: str | None = None, limit: NonNegativeInt64 = 20
) -> list[LoopRun]:
    return loop.list_loop_runs(session, deployment, limit)


class DriftRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: str = Field(description="data version NAME@N")
    current: str = Field(description="data version NAME@N")
    columns: list[str] | None = None
    stattest: str | None = None
    column_stattests: dict[str, str] | None = None
    threshold: float | None = None
    correction: str | None = None
    drift_share: float = 0.5


@router.post(routes.DRIFT_REPORTS.template)
def drift_report(body: DriftRequest, state: State) -> dict[str, Any]:
    """Compare two data versions column by column (the JSON twin of ``opsloop drift``)."""
    from opsloop.monitoring.drift import drift

    data = _sources(state).data
    report = drift(
        data.get(body.reference), data.get(body.current), columns=body.columns,
        stattest=body.stattest, column_stattests=body.column_stattests,
        threshold=body.threshold, correction=body.correction, drift_share=body.drift_share,
    )  # fmt: skip
    return report.to_dict()
