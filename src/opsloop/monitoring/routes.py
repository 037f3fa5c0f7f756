"""Monitoring's REST paths, written once: :mod:`opsloop.monitoring.api` declares them and
:class:`~opsloop.monitoring.remote.RemoteMonitorBackend` calls them (under ``/api``)."""

from __future__ import annotations

from opsloop.kernel.routes import Route

__all__ = [
    "ALERTS",
    "ALERT_ACKNOWLEDGE",
    "ALERT_RESOLVE",
    "DRIFT_REPORTS",
    "LOOP",
    "LOOP_RUNS",
    "MONITOR",
    "MONITORS",
    "MONITOR_REFERENCES",
    "MONITOR_REVERT",
    "MONITOR_RUN",
    "MONITOR_RUNS",
    "MONITOR_RUN_REPORT",
]

MONITORS = Route("/monitors")
MONITOR = Route("/monitors/{name}")
MONITOR_RUNS = Route("/monitors/{name}/runs")  # POST checks now, GET lists the checks
MONITOR_REFERENCES = Route("/monitors/{name}/references")  # GET the history, POST re-baselines
MONITOR_REVERT = Route("/monitors/{name}/references/revert")
MONITOR_RUN = Route("/monitor-runs/{run_id}")
MONITOR_RUN_REPORT = Route("/monitor-runs/{run_id}/report.html")
ALERTS = Route("/alerts")
ALERT_ACKNOWLEDGE = Route("/alerts/{alert_id}/acknowledge")
ALERT_RESOLVE = Route("/alerts/{alert_id}/resolve")
LOOP = Route("/loop")
LOOP_RUNS = Route("/loop-runs")
DRIFT_REPORTS = Route("/drift-reports")
