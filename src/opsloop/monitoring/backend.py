"""The monitoring backend contract: what ``client.monitors`` needs, local or remote.

Two implementations: :class:`~opsloop.monitoring.local.LocalMonitorBackend` calls the services
in-process over the store, the prediction log and the sources it is handed
(:mod:`opsloop.monitoring.ports`); :class:`~opsloop.monitoring.remote.RemoteMonitorBackend`
calls the REST API, which calls the same services on the server (whose scheduler also runs the
checks on their schedule). Checking a monitor definition before it is sent is written once, in
:class:`~opsloop.monitoring.sdk.MonitorsClient`.

Contract: methods are thread-safe; returned entities are immutable snapshots (changing one writes
nothing, and they do not follow later writes); errors are ``OpsloopError`` subclasses, the same
class whichever backend raised them (a server that cannot be reached is a ``StoreError``); every
write is durable when the method returns.
"""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod
from typing import Any

from opsloop.monitoring.entities import Alert
from opsloop.monitoring.entities import LoopRun
from opsloop.monitoring.entities import Monitor
from opsloop.monitoring.entities import MonitorCreate
from opsloop.monitoring.entities import MonitorReference
from opsloop.monitoring.entities import MonitorRun

__all__ = ["MonitorBackend"]


class MonitorBackend(ABC):
    """Monitors, their checks, alerts and the retraining loop. See the module docstring."""

    # -- monitors -----------------------------------------------------------------------------
    @abstractmethod
    def create_monitor(self, body: MonitorCreate) -> Monitor:
        """Profile the reference data version (its features and the deployment's stable
        model's predictions, with the model's quality where it holds the target) and store a
        monitor watching the deployment against it; its creator is the current user.

        Raises ``NotFound`` if the deployment, the reference data version or the stable model
        version does not exist, ``InvalidInput`` if the target or a feature is not a column of
        the reference, ``Conflict`` if a monitor of that name exists."""

    @abstractmethod
    def get_monitor(self, name: str) -> Monitor:
        """The monitor ``name``. Raises ``NotFound`` if there is none."""

    @abstractmethod
    def list_monitors(self, deployment: str | None) -> list[Monitor]:
        """Every monitor by name, or those watching ``deployment`` when given. Raises
        nothing of its own."""

    @abstractmethod
    def delete_monitor(self, name: str) -> None:
        """Delete the monitor ``name``; its checks, alerts and loop runs go with it. Raises
        ``NotFound`` if there is none."""

    # -- references ---------------------------------------------------------------------------
    @abstractmethod
    def list_references(self, name: str) -> list[MonitorReference]:
        """The monitor's reference history, newest (current) first: the reference it was
        created on, each re-baseline (by the loop after a promotion, or by hand) and each
        revert, with who, why and when. Raises ``NotFound`` if there is no monitor ``name``."""

    @abstractmethod
    def rebaseline(self, name: str, reference: str, reason: str | None) -> MonitorReference:
        """Make the data version ``reference``, profiled with the deployment's stable model,
        the monitor's reference, as a new history entry by the current user. Raises
        ``NotFound`` for the monitor, its deployment or the data version, ``InvalidInput`` if
        the data lacks the monitor's target or features."""

    @abstractmethod
    def revert_reference(self, name: str, to: int | None, reason: str | None) -> MonitorReference:
        """Go back to history entry ``to`` (default: the one before the current one), as a new
        entry by the current user. Raises ``NotFound`` for the monitor or the entry,
        ``InvalidInput`` when there is nothing to go back to or ``to`` is current."""

    # -- checks -------------------------------------------------------------------------------
    @abstractmethod
    def check_monitor(self, name: str) -> MonitorRun:
        """Check the monitor's window of the prediction log now: store the run with its
        metrics and drift report, open or resolve alerts and deliver them, start retraining
        where a rule asks for it. A tumbling window that is not complete yet gives a run with
        status ``waiting`` and no id, stored nowhere. Raises ``NotFound`` if there is no
        monitor ``name`` (a failed alert delivery is recorded on the alert, not raised)."""

    @abstractmethod
    def list_runs(self, name: str, limit: int) -> list[MonitorRun]:
        """The monitor's latest ``limit`` checks, newest first, without their drift reports.
        Raises ``NotFound`` if there is no monitor ``name``."""

    @abstractmethod
    def get_run(self, run_id: str) -> MonitorRun:
        """One check with its drift report and the alerts it opened. Raises ``NotFound`` if
        there is no run ``run_id``."""

    # -- alerts -------------------------------------------------------------------------------
    @abstractmethod
    def list_alerts(
        self, status: str | None, deployment: str | None, monitor: str | None, limit: int
    ) -> list[Alert]:
        """The latest ``limit`` alerts, most recent first, filtered by ``status`` (``open``,
        ``firing``, ``acknowledged`` or ``resolved``), deployment and monitor name when given.
        Raises ``InvalidInput`` for any other status."""

    @abstractmethod
    def acknowledge_alert(self, alert_id: str) -> Alert:
        """Mark the alert seen by the current user; it stays open (and deduplicates).
        ``alert_id`` may be a unique prefix (6+ characters). Raises ``NotFound`` if no alert
        matches, ``Conflict`` if the prefix is ambiguous, ``InvalidInput`` if it is too short
        or the alert is already resolved."""

    @abstractmethod
    def resolve_alert(self, alert_id: str) -> Alert:
        """Resolve the alert as the current user. ``alert_id`` may be a unique prefix (6+
        characters). Raises ``NotFound`` if no alert matches, ``Conflict`` if the prefix is
        ambiguous, ``InvalidInput`` if it is too short or the alert is already resolved."""

    # -- the loop -----------------------------------------------------------------------------
    @abstractmethod
    def loop_status(self, deployment: str | None) -> list[dict[str, Any]]:
        """Per monitor (of ``deployment`` when given): where its loop stands and why, with
        its latest check, its open alerts and its latest loop run. Raises nothing of its
        own."""

    @abstractmethod
    def list_loop_runs(self, deployment: str | None, limit: int) -> list[LoopRun]:
        """The latest ``limit`` retraining loop runs (of ``deployment`` when given), newest
        first. Raises nothing of its own."""
