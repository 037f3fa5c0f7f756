"""``client.monitors``: monitors on deployments, their checks, alerts and the retraining loop.

In local mode the services run in this process over the embedded store and the shared
prediction log folder; with a server every call goes to its REST API, where the server's
scheduler also runs the checks on their schedule.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter, ValidationError

from opsloop.errors import InvalidInput, validation_problems
from opsloop.kernel.sdkpart import LocalOrRemote
from opsloop.monitoring.entities import Alert, LoopRun, Monitor, MonitorCreate, MonitorRun

__all__ = ["MonitorsClient"]

_MONITORS = TypeAdapter(list[Monitor])
_RUNS = TypeAdapter(list[MonitorRun])
_ALERTS = TypeAdapter(list[Alert])
_LOOPS = TypeAdapter(list[LoopRun])


class MonitorsClient(LocalOrRemote):
    @property
    def _log(self) -> Any:
        return self._client.deployments._runtime.log

    # -- monitors -------------------------------------------------------------------------------
    def create(self, name: str, deployment: str, reference: str, **spec: Any) -> Monitor:
        """Watch ``deployment`` against the data version ``reference``; ``spec`` takes the
        fields of :class:`MonitorSpec` (``window``, ``target``, ``rules``, ``retrain``, ...)."""
        try:
            body = MonitorCreate(name=name, deployment=deployment, reference=reference, spec=spec)
        except ValidationError as exc:
            raise InvalidInput("invalid monitor: " + "; ".join(validation_problems(exc))) from None
        if self._remote:
            payload = body.model_dump(mode="json")
            response = self._http("POST", "/api/monitors", json=payload, idempotent=False)
            return Monitor.model_validate(response)
        from opsloop.kernel.identity import current_user
        from opsloop.monitoring.services import create_monitor

        return create_monitor(self._client, self._store, body, current_user())

    def get(self, name: str) -> Monitor:
        if self._remote:
            return Monitor.model_validate(self._http("GET", f"/api/monitors/{quote(name)}"))
        from opsloop.monitoring.services import get_monitor

        with self._store.read() as session:
            return get_monitor(session, name)

    def list(self, deployment: str | None = None) -> list[Monitor]:
        if self._remote:
            params = {"deployment": deployment} if deployment else {}
            return _MONITORS.validate_python(self._http("GET", "/api/monitors", params=params))
        from opsloop.monitoring.services import list_monitors

        with self._store.read() as session:
            return list_monitors(session, deployment)

    def delete(self, name: str) -> None:
        if self._remote:
            self._client._transport.request("DELETE", f"/api/monitors/{quote(name)}")
            return
        from opsloop.monitoring.services import delete_monitor

        with self._store.write() as session:
            delete_monitor(session, name)

    # -- checks -------------------------------------------------------------------------------
    def check(self, name: str) -> MonitorRun:
        """Check the monitor's window now (alerts open, retraining may start)."""
        if self._remote:
            response = self._client._transport.request(
                "POST", f"/api/monitors/{quote(name)}/runs", idempotent=False
            )
            return MonitorRun.model_validate(response.json())
        from opsloop.monitoring.services import run_monitor

        return run_monitor(self._client, self._store, self._log, name)

    def runs(self, name: str, limit: int = 20) -> list[MonitorRun]:
        if self._remote:
            path = f"/api/monitors/{quote(name)}/runs"
            return _RUNS.validate_python(self._http("GET", path, params={"limit": limit}))
        from opsloop.monitoring.services import list_runs

        with self._store.read() as session:
            return list_runs(session, name, limit)

    def run(self, run_id: str) -> MonitorRun:
        """One check with its drift report."""
        if self._remote:
            return MonitorRun.model_validate(self._http("GET", f"/api/monitor-runs/{run_id}"))
        from opsloop.monitoring.services import get_run

        with self._store.read() as session:
            return get_run(session, run_id)

    # -- alerts -------------------------------------------------------------------------------
    def alerts(
        self, *, status: str | None = None, deployment: str | None = None,
        monitor: str | None = None, limit: int = 100,
    ) -> list[Alert]:  # fmt: skip
        if self._remote:
            params = {k: v for k, v in {"status": status, "deployment": deployment,
                      "monitor": monitor, "limit": limit}.items() if v is not None}  # fmt: skip
            return _ALERTS.validate_python(self._http("GET", "/api/alerts", params=params))
        from opsloop.monitoring.alerts import list_alerts

        with self._store.read() as session:
            return list_alerts(
                session, status=status, deployment=deployment, monitor=monitor, limit=limit
            )

    def _alert_action(self, alert_id: str, action: str) -> Alert:
        if self._remote:
            response = self._client._transport.request(
                "POST", f"/api/alerts/{alert_id}/{action}", idempotent=False
            )
            return Alert.model_validate(response.json())
        from opsloop.kernel.identity import current_user
        from opsloop.monitoring import alerts

        act = alerts.acknowledge if action == "acknowledge" else alerts.resolve
        with self._store.write() as session:
            return act(session, alert_id, current_user())

    def acknowledge(self, alert_id: str) -> Alert:
        return self._alert_action(alert_id, "acknowledge")

    def resolve(self, alert_id: str) -> Alert:
        return self._alert_action(alert_id, "resolve")

    # -- the loop -----------------------------------------------------------------------------
    def loop_status(self, deployment: str | None = None) -> list[dict[str, Any]]:
        if self._remote:
            params = {"deployment": deployment} if deployment else {}
            return list(self._http("GET", "/api/loop", params=params))
        from opsloop.monitoring.loop import loop_status

        with self._store.read() as session:
            return loop_status(session, deployment)

    def loop_runs(self, deployment: str | None = None, limit: int = 20) -> list[LoopRun]:
        if self._remote:
            params: dict[str, Any] = {"limit": limit}
            if deployment:
                params["deployment"] = deployment
            return _LOOPS.validate_python(self._http("GET", "/api/loop-runs", params=params))
        from opsloop.monitoring.loop import list_loop_runs

        with self._store.read() as session:
            return list_loop_runs(session, deployment, limit)
