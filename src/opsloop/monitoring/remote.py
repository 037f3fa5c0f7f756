"""The REST monitoring backend: each method is one request to an opsloop server's API, whose
routes call the same services (see :mod:`opsloop.monitoring.routes` for the paths)."""

from __future__ import annotations

from typing import Any

from opsloop.kernel.remote_backend import RemoteBackend
from opsloop.monitoring import routes
from opsloop.monitoring.backend import MonitorBackend
from opsloop.monitoring.entities import Alert
from opsloop.monitoring.entities import LoopRun
from opsloop.monitoring.entities import Monitor
from opsloop.monitoring.entities import MonitorCreate
from opsloop.monitoring.entities import MonitorRebaseline
from opsloop.monitoring.entities import MonitorReference
from opsloop.monitoring.entities import MonitorRevert
from opsloop.monitoring.entities import MonitorRun

__all__ = ["RemoteMonitorBackend"]


class RemoteMonitorBackend(RemoteBackend, MonitorBackend):
    """Monitors, their checks and alerts, and the loop, on an opsloop server."""

    # -- monitors -----------------------------------------------------------------------------
    def create_monitor(self, body: MonitorCreate) -> Monitor:
        return self._post(Monitor, routes.MONITORS.url(), body.model_dump(mode="json"))

    def get_monitor(self, name: str) -> Monitor:
        return self.transport.fetch(Monitor, "GET", routes.MONITOR.url(name=name))

    def list_monitors(self, deployment: str | None) -> list[Monitor]:
        params = {"deployment": deployment} if deployment else {}
        return self.transport.fetch(list[Monitor], "GET", routes.MONITORS.url(), params=params)

    def delete_monitor(self, name: str) -> None:
        self.transport.request("DELETE", routes.MONITOR.url(name=name))

    # -- references ---------------------------------------------------------------------------
    def list_references(self, name: str) -> list[MonitorReference]:
        path = routes.MONITOR_REFERENCES.url(name=name)
        return self.transport.fetch(list[MonitorReference], "GET", path)

    def rebaseline(self, name: str, reference: str, reason: str | None) -> MonitorReference:
        body = MonitorRebaseline(reference=reference, reason=reason).model_dump(mode="json")
        return self._post(MonitorReference, routes.MONITOR_REFERENCES.url(name=name), body)

    def revert_reference(self, name: str, to: int | None, reason: str | None) -> MonitorReference:
        body = MonitorRevert(to=to, reason=reason).model_dump(mode="json")
        return self._post(MonitorReference, routes.MONITOR_REVERT.url(name=name), body)

    # -- checks -------------------------------------------------------------------------------
    def check_monitor(self, name: str) -> MonitorRun:
        return self._post(MonitorRun, routes.MONITOR_RUNS.url(name=name))

    def list_runs(self, name: str, limit: int) -> list[MonitorRun]:
        path = routes.MONITOR_RUNS.url(name=name)
        return self.transport.fetch(list[MonitorRun], "GET", path, params={"limit": limit})

    def get_run(self, run_id: str) -> MonitorRun:
        return self.transport.fetch(MonitorRun, "GET", routes.MONITOR_RUN.url(run_id=run_id))

    # -- alerts -------------------------------------------------------------------------------
    def list_alerts(
        self, status: str | None, deployment: str | None, monitor: str | None, limit: int
    ) -> list[Alert]:
        given = {"status": status, "deployment": deployment, "monitor": monitor, "limit": limit}
        params = {k: v for k, v in given.items() if v is not None}
        return self.transport.fetch(list[Alert], "GET", routes.ALERTS.url(), params=params)

    def acknowledge_alert(self, alert_id: str) -> Alert:
        return self._post(Alert, routes.ALERT_ACKNOWLEDGE.url(alert_id=alert_id))

    def resolve_alert(self, alert_id: str) -> Alert:
        return self._post(Alert, routes.ALERT_RESOLVE.url(alert_id=alert_id))

    # -- the loop -----------------------------------------------------------------------------
    def loop_status(self, deployment: str | None) -> list[dict[str, Any]]:
        params = {"deployment": deployment} if deployment else {}
        return list(self.transport.json("GET", routes.LOOP.url(), params=params))

    def list_loop_runs(self, deployment: str | None, limit: int) -> list[LoopRun]:
        params: dict[str, Any] = {"limit": limit}
        if deployment:
            params["deployment"] = deployment
        return self.transport.fetch(list[LoopRun], "GET", routes.LOOP_RUNS.url(), params=params)
