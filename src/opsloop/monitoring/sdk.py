"""``client.monitors``: monitors on deployments, their checks, alerts and the retraining loop.

Written once over a :class:`~opsloop.monitoring.backend.MonitorBackend`: in local mode the
services run in this process over the embedded store and the shared prediction log folder; with
a server every call goes to its REST API, where the server's scheduler also runs the checks on
their schedule. The ``Client`` chooses the backend.
"""

from __future__ import annotations

from typing import Any

from opsloop.kernel.validation import validated
from opsloop.monitoring.backend import MonitorBackend
from opsloop.monitoring.entities import Alert
from opsloop.monitoring.entities import LoopRun
from opsloop.monitoring.entities import Monitor
from opsloop.monitoring.entities import MonitorCreate
from opsloop.monitoring.entities import MonitorReference
from opsloop.monitoring.entities import MonitorRevert
from opsloop.monitoring.entities import MonitorRun

__all__ = ["MonitorsClient"]


class MonitorsClient:
    """Monitors, checks, alerts and the loop, over ``backend`` (local or remote)."""

    def __init__(self, backend: MonitorBackend) -> None:
        self._backend = backend

    # -- monitors -------------------------------------------------------------------------------
    def create(self, name: str, deployment: str, reference: str, **spec: Any) -> Monitor:
        """Watch ``deployment`` against the data version ``reference``; ``spec`` takes the
        fields of :class:`MonitorSpec` (``window``, ``target``, ``rules``, ``retrain``, ...)."""
        body = validated(MonitorCreate, "invalid monitor", name=name, deployment=deployment,
                         reference=reference, spec=spec)  # fmt: skip
        return self._backend.create_monitor(body)

    def get(self, name: str) -> Monitor:
        return self._backend.get_monitor(name)

    def list(self, deployment: str | None = None) -> list[Monitor]:
        return self._backend.list_monitors(deployment)

    def delete(self, name: str) -> None:
        self._backend.delete_monitor(name)

    # -- references ---------------------------------------------------------------------------
    def references(self, name: str) -> list[MonitorReference]:
        """The monitor's reference history, newest (current) first: who re-baselined it on
        what, when and why (the loop does after each promotion)."""
        return self._backend.list_references(name)

    def rebaseline(self, name: str, reference: str, reason: str | None = None) -> MonitorReference:
        """Compare the monitor's traffic to the data version ``reference`` from now on."""
        return self._backend.rebaseline(name, reference, reason)

    def revert(
        self, name: str, to: int | None = None, reason: str | None = None
    ) -> MonitorReference:
        """Go back to reference entry ``to`` (default: the one before the current one)."""
        validated(MonitorRevert, "invalid revert", to=to, reason=reason)
        return self._backend.revert_reference(name, to, reason)

    # -- checks -------------------------------------------------------------------------------
    def check(self, name: str) -> MonitorRun:
        """Check the monitor's window now (alerts open, retraining may start)."""
        return self._backend.check_monitor(name)

    def runs(self, name: str, limit: int = 20) -> list[MonitorRun]:
        return self._backend.list_runs(name, limit)

    def run(self, run_id: str) -> MonitorRun:
        """One check with its drift report."""
        return self._backend.get_run(run_id)

    # -- alerts -------------------------------------------------------------------------------
    def alerts(
        self, *, status: str | None = None, deployment: str | None = None,
        monitor: str | None = None, limit: int = 100,
    ) -> list[Alert]:  # fmt: skip
        return self._backend.list_alerts(status, deployment, monitor, limit)

    def acknowledge(self, alert_id: str) -> Alert:
        return self._backend.acknowledge_alert(alert_id)

    def resolve(self, alert_id: str) -> Alert:
        return self._backend.resolve_alert(alert_id)

    # -- the loop -----------------------------------------------------------------------------
    def loop_status(self, deployment: str | None = None) -> list[dict[str, Any]]:
        return self._backend.loop_status(deployment)

    def loop_runs(self, deployment: str | None = None, limit: int = 20) -> list[LoopRun]:
        return self._backend.list_loop_runs(deployment, limit)
