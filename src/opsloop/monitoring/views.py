"""The monitor pages: every monitor with where its loop stands, and one monitor's open alerts
(acknowledge, resolve), its reference history (revert), its checks with their drift reports,
its loop runs step by step, and charts over its checks.

The charts come first among a check's numbers because a trend is what a table of checks hides:
drift share creeping up to the dataset-drift line, accuracy (realised, and CBPE's estimate
before labels arrive) sliding towards an alert threshold. Each chart draws the thresholds of
the rules on its metrics as dashed lines (``monitor_charts.js`` with the shell's ``lineChart``).
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from fastapi.responses import Response

from opsloop.errors import InvalidInput
from opsloop.kernel.identity import current_user
from opsloop.monitoring import alerts
from opsloop.monitoring import loop
from opsloop.monitoring import references
from opsloop.monitoring import services
from opsloop.monitoring.entities import AlertRule
from opsloop.monitoring.entities import Monitor
from opsloop.monitoring.entities import MonitorRun
from opsloop.monitoring.tables import MonitorRow
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State
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
    checks = services.list_runs(session, name, CHART_CHECKS)
    return UI.subpage(
        request,
        "monitor.html",
        name,
        monitor=monitor,
        runs=checks[:50],
        charts=check_charts(monitor, checks),
        charted=len(checks),
        alerts=alerts.list_alerts(session, monitor=name, limit=50),
        references=references.list_references(session, name),
        status=next(
            s for s in loop.loop_status(session, monitor.deployment) if s["monitor"] == name
        ),
        loops=[
            r for r in loop.list_loop_runs(session, monitor.deployment, 20) if r.monitor == name
        ],
    )


CHART_CHECKS = 500  # the charts read this many of the latest checks; the table shows 50
# Quality metrics, each charted with CBPE's estimate of it (``cbpe_<name>``) when there is one.
QUALITY = ("accuracy", "f1", "roc_auc", "precision", "recall", "rmse", "mae")
_TITLES = {"f1": "F1", "roc_auc": "ROC AUC", "rmse": "RMSE", "mae": "MAE"}
_SEVERITY_COLOURS = {"critical": "var(--bad)", "warning": "var(--warn)", "info": "var(--muted)"}
_NOT_CHARTED = {"dataset_drift", "rollbacks", "drift_share", *QUALITY}


def _series(checks: list[MonitorRun], metric: str, label: str) -> dict[str, Any] | None:
    points = [
        (c.started_at, float(v))
        for c in checks
        if isinstance(v := c.metrics.get(metric), int | float) and math.isfinite(v)
    ]
    if not points:
        return None
    return {
        "label": label,
        "metric": metric,
        "timestamps": [t for t, _ in points],
        "values": [v for _, v in points],
    }


def _threshold(rule: AlertRule, drift_share: float | None = None) -> dict[str, Any]:
    """The rule's threshold line; a rule on ``dataset_drift`` is drawn at ``drift_share``."""
    metric, op, value = rule.metric, rule.op, rule.threshold
    if drift_share is not None:
        metric, op, value = "drift_share", ">=", drift_share
    return {
        "value": value,
        "label": f"{rule.name}: {metric} {op} {value:g}",
        "color": _SEVERITY_COLOURS.get(rule.severity, "var(--axis)"),
    }


def check_charts(monitor: Monitor, checks: list[MonitorRun]) -> list[dict[str, Any]]:
    """What the monitor page charts: drift share, each quality metric (realised and
    estimated), and every other metric an alert rule watches, each with its rules' thresholds.

    A rule on ``dataset_drift`` (0 or 1) fires when the drift share reaches the monitor's
    ``drift_share``, so it is drawn at that level on the drift share chart."""
    ordered = sorted(checks, key=lambda c: c.started_at)
    rules = monitor.spec.rules
    charts: list[dict[str, Any]] = []

    def add(key: str, title: str, series: list[Any], refs: list[dict[str, Any]]) -> None:
        drawn = [s for s in series if s is not None]
        if drawn:
            charts.append({"key": key, "title": title, "series": drawn, "references": refs})

    share = monitor.spec.drift_share
    drift_refs = [
        _threshold(r, drift_share=share)
        for r in rules
        if r.metric == "dataset_drift" and r.holds(1.0) and not r.holds(0.0)
    ]
    drift_refs += [_threshold(r) for r in rules if r.metric == "drift_share"]
    if not drift_refs:
        drift_refs = [{"value": share, "label": f"dataset drift at {share:g}"}]
    add("drift_share", "Drift share (drifted columns / tested columns)",
        [_series(ordered, "drift_share", "drift share")], drift_refs)  # fmt: skip
    for metric in QUALITY:
        estimated = f"cbpe_{metric}"
        add(
            metric,
            _TITLES.get(metric, metric.capitalize()),
            [_series(ordered, metric, f"{metric} (labelled)"),
             _series(ordered, estimated, f"{metric} (estimated, CBPE)")],
            [_threshold(r) for r in rules if r.metric in (metric, estimated)],
        )  # fmt: skip
    done = {*_NOT_CHARTED, *(f"cbpe_{m}" for m in QUALITY)}
    for metric in dict.fromkeys(r.metric for r in rules if r.metric not in done):
        add(metric, metric.replace("_", " "), [_series(ordered, metric, metric)],
            [_threshold(r) for r in rules if r.metric == metric])  # fmt: skip
    return charts


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
