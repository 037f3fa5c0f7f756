"""The in-process monitoring backend: the services over a store, the prediction log and the
sources of models, deployments and data it is handed (see :mod:`opsloop.monitoring.ports`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING
from typing import Any

from opsloop.kernel.identity import current_user
from opsloop.kernel.store_calls import StoreCalls
from opsloop.kernel.timeutil import now_ms
from opsloop.monitoring.backend import MonitorBackend
from opsloop.monitoring.entities import Alert
from opsloop.monitoring.entities import LoopRun
from opsloop.monitoring.entities import Monitor
from opsloop.monitoring.entities import MonitorCreate
from opsloop.monitoring.entities import MonitorReference
from opsloop.monitoring.entities import MonitorRun
from opsloop.monitoring.ports import PredictionSource
from opsloop.monitoring.ports import Sources

if TYPE_CHECKING:
    from opsloop.monitoring.measure import Measuring
    from opsloop.monitoring.measure_apart import MeasureApart
    from opsloop.monitoring.quick_reads import MonitorReads
    from opsloop.registry.entities import ModelVersion
    from opsloop.registry.package import LoadedModel
    from opsloop.store.database import Store

__all__ = ["LocalMonitorBackend"]


class LocalMonitorBackend(StoreCalls, MonitorBackend):
    """Runs the services in this process; each method is one or a few short transactions. The
    services (SQLAlchemy, NumPy and the drift tests under them) are imported by the calls that
    use them: listing monitors imports none of them.

    Args:
        store: Opens (or returns the process's shared) metadata store, when a call first
            needs it.
        predictions: Gives the prediction log the checks read. It is asked on the first
            check only, so a client that never checks does not open the log.
        sources: Its ``models`` load the model versions that score the reference and the
            windows, its ``deployments`` give a monitor's deployment (its stable version) and
            its ``data`` the reference data version at creation. Each is asked for when a call
            needs it: a check never builds the data client (nor imports its lineage catalogue).
        quick: Reads on a bare connection to the same SQLite file, for the lookups and the
            listing (:mod:`opsloop.monitoring.quick_reads`).
        measure_apart: Starts a check's measuring half in another process, given what the
            check read and its time (:mod:`opsloop.monitoring.measure_apart`); used with
            ``quick`` when the process is cold.
    """

    def __init__(
        self,
        store: Callable[[], Store],
        predictions: Callable[[], PredictionSource],
        sources: Sources,
        quick: MonitorReads | None = None,
        measure_apart: Callable[[Measuring, int], MeasureApart] | None = None,
    ) -> None:
        self._open_store = store
        self._predictions = predictions
        self._sources = sources
        self._quick = quick
        self._measure_apart = measure_apart

    @cached_property
    def store(self) -> Store:  # type: ignore[override]  (StoreCalls declares the attribute)
        return self._open_store()

    # -- monitors -----------------------------------------------------------------------------
    def create_monitor(self, body: MonitorCreate) -> Monitor:
        from opsloop.monitoring import services

        return services.create_monitor(
            self.store, body, current_user(), models=self._sources.models,
            deployments=self._sources.deployments, data=self._sources.data,
        )  # fmt: skip

    def get_monitor(self, name: str) -> Monitor:
        if self._quick is not None:
            return self._quick.get_monitor(name)
        from opsloop.monitoring import services

        return self._read(services.get_monitor, name)

    def list_monitors(self, deployment: str | None) -> list[Monitor]:
        if self._quick is not None:
            return self._quick.list_monitors(deployment)
        from opsloop.monitoring import services

        return self._read(services.list_monitors, deployment)

    def delete_monitor(self, name: str) -> None:
        from opsloop.monitoring import services

        self._write(services.delete_monitor, name)

    # -- references ---------------------------------------------------------------------------
    def list_references(self, name: str) -> list[MonitorReference]:
        from opsloop.monitoring import references

        return self._read(references.list_references, name)

    def rebaseline(self, name: str, reference: str, reason: str | None) -> MonitorReference:
        from opsloop.monitoring import references

        return references.rebaseline(
            self.store, name, reference, current_user(), reason, models=self._sources.models,
            deployments=self._sources.deployments, data=self._sources.data,
        )  # fmt: skip

    def revert_reference(self, name: str, to: int | None, reason: str | None) -> MonitorReference:
        from opsloop.monitoring import references

        return self._write(references.revert, name, current_user(), to, reason)

    # -- checks -------------------------------------------------------------------------------
    def check_monitor(self, name: str) -> MonitorRun:
        from opsloop.monitoring.measure_apart import chosen

        if self._quick is None or self._measure_apart is None or not chosen():
            from opsloop.monitoring import services

            return services.run_monitor(
                self.store, self._predictions(), name, models=_ModelsOnNeed(self._sources)
            )
        now = now_ms()
        inputs = self._quick.check_inputs(name)
        child = self._measure_apart(inputs.measuring, now)
        from opsloop.monitoring import services  # SQLAlchemy's import and the store's opening

        store = self.store  # happen while the child measures
        measured_apart, measured = child.result()
        if not measured_apart:
            from opsloop.monitoring.measure import measure

            models = _ModelsOnNeed(self._sources)
            measured = measure(inputs.measuring, self._predictions(), models=models, now=now)
        return services.record_check(store, name, inputs, measured, now)

    def list_runs(self, name: str, limit: int) -> list[MonitorRun]:
        from opsloop.monitoring import services

        return self._read(services.list_runs, name, limit)

    def get_run(self, run_id: str) -> MonitorRun:
        from opsloop.monitoring import services

        return self._read(services.get_run, run_id)

    # -- alerts -------------------------------------------------------------------------------
    def list_alerts(
        self, status: str | None, deployment: str | None, monitor: str | None, limit: int
    ) -> list[Alert]:
        from opsloop.monitoring import alerts

        return self._read(
            alerts.list_alerts, status=status, deployment=deployment, monitor=monitor, limit=limit
        )

    def acknowledge_alert(self, alert_id: str) -> Alert:
        from opsloop.monitoring import alerts

        return self._write(alerts.acknowledge, alert_id, current_user())

    def resolve_alert(self, alert_id: str) -> Alert:
        from opsloop.monitoring import alerts

        return self._write(alerts.resolve, alert_id, current_user())

    # -- the loop -----------------------------------------------------------------------------
    def loop_status(self, deployment: str | None) -> list[dict[str, Any]]:
        from opsloop.monitoring import loop

        return self._read(loop.loop_status, deployment)

    def list_loop_runs(self, deployment: str | None, limit: int) -> list[LoopRun]:
        from opsloop.monitoring import loop

        return self._read(loop.list_loop_runs, deployment, limit)


class _ModelsOnNeed:
    """``sources.models``, asked for at the first call: a check whose window holds the
    probabilities the server logged loads no model, so it builds no registry client (nor
    imports the registry's SDK and entities)."""

    def __init__(self, sources: Sources) -> None:
        self._sources = sources

    def load(self, ref: str) -> LoadedModel:
        return self._sources.models.load(ref)

    def version(self, ref: str) -> ModelVersion:
        return self._sources.models.version(ref)
