"""Alerts: rules judged on each check, deduplicated, cooled down, delivered, acknowledged, resolved.

A rule that holds opens an alert unless one of the same rule is already open (then the open one
counts the repeat) or the last one resolved less than ``cooldown_seconds`` ago. A rule that no
longer holds resolves its open alert when ``auto_resolve``. Delivery happens outside the
database transaction: each channel's outcome (``delivered``, or ``failed`` with the error, the
attempts made and when to try next) is kept on the alert, and failed webhooks are retried with
exponential backoff on later scheduler ticks, up to ``MAX_ATTEMPTS``; the alert itself is kept
whatever its channels do.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.kernel.timeutil import now_ms
from opsloop.monitoring.entities import Alert
from opsloop.monitoring.entities import AlertRule
from opsloop.monitoring.entities import Channel
from opsloop.monitoring.tables import AlertRow
from opsloop.monitoring.tables import MonitorRow
from opsloop.store.ids import row_by_id

__all__ = [
    "MAX_ATTEMPTS",
    "acknowledge",
    "deliver",
    "due_deliveries",
    "evaluate_rules",
    "list_alerts",
    "record_firing",
    "record_value",
    "register_gauges",
    "resolve",
    "resolve_incident",
    "to_entity",
]

log = logging.getLogger("opsloop.alerts")
MAX_ATTEMPTS = 8
ATTEMPTS_PER_TRY = 3
OPEN = ("firing", "acknowledged")


def register_gauges() -> None:
    """Register ``opsloop_alert_firing{deployment, monitor, rule, severity}`` (1 while an alert
    of the rule is open) and ``opsloop_monitor_value{deployment, monitor, metric}`` (the latest
    value of each monitored metric) with opsloop's registry, and record them from now on.

    Called by the apps that serve ``/metrics``. Elsewhere checks record nothing: a one-shot
    ``opsloop monitors check`` has no scraper, and importing prometheus_client is a twentieth of
    its instructions."""
    _gauges()


def record_firing(labels: tuple[str, str, str, str], value: int) -> None:
    if _gauges.cache_info().currsize:
        _gauges()[0].labels(*labels).set(value)


def record_value(labels: tuple[str, str, str], value: float) -> None:
    if _gauges.cache_info().currsize:
        _gauges()[1].labels(*labels).set(value)


@functools.cache
def _gauges() -> tuple[Any, Any]:
    from prometheus_client import Gauge

    from opsloop.kernel.metrics import REGISTRY

    firing = Gauge(
        "opsloop_alert_firing", "1 while an alert of the rule is open",
        ["deployment", "monitor", "rule", "severity"], registry=REGISTRY,
    )  # fmt: skip
    value = Gauge(
        "opsloop_monitor_value", "The latest value of each monitored metric",
        ["deployment", "monitor", "metric"], registry=REGISTRY,
    )  # fmt: skip
    return firing, value


ROLLBACK_RULE = "rollout-rolled-back"


def with_rollback_rule(rules: list[AlertRule]) -> list[AlertRule]:
    """The monitor's rules plus one for rollbacks of its deployment: a rollout the controller
    rolled back since the last check opens a critical alert on every channel the monitor uses,
    and it stays open until someone acknowledges or resolves it."""
    channels = list({c.key: c for r in rules for c in r.channels}.values())
    rollback = AlertRule(
        name=ROLLBACK_RULE, metric="rollbacks", op=">=", threshold=1, severity="critical",
        cooldown_seconds=0, auto_resolve=False, channels=channels or [Channel(type="log")],
    )  # fmt: skip
    return [*rules, rollback]


def to_entity(row: AlertRow, monitor: str) -> Alert:
    return Alert(
        id=row.id, monitor=monitor, deployment=row.deployment, rule=row.rule,
        severity=row.severity, status=row.status, metric=row.metric, value=row.value,
        message=row.message, count=row.count, first_at=row.first_at, last_at=row.last_at,
        acknowledged_by=row.acknowledged_by, acknowledged_at=row.acknowledged_at,
        resolved_by=row.resolved_by, resolved_at=row.resolved_at, resolution=row.resolution,
        deliveries=json.loads(row.deliveries),
    )  # fmt: skip


def _open(session: Session, monitor_id: str, rule: str) -> AlertRow | None:
    return session.scalars(
        select(AlertRow).where(
            AlertRow.monitor_id == monitor_id, AlertRow.rule == rule, AlertRow.status.in_(OPEN)
        )
    ).first()


def _cooling(session: Session, monitor_id: str, rule: AlertRule, now: int) -> bool:
    since = now - int(rule.cooldown_seconds * 1000)
    return (
        session.scalars(
            select(AlertRow.id).where(
                AlertRow.monitor_id == monitor_id, AlertRow.rule == rule.name,
                AlertRow.status == "resolved", AlertRow.resolved_at > since,
            )
        ).first()
        is not None
    )  # fmt: skip


def evaluate_rules(
    session: Session, monitor: MonitorRow, rules: list[AlertRule], metrics: dict[str, Any],
    run_id: str, now: int,
) -> tuple[list[str], list[str], list[str]]:  # fmt: skip
    """Judge every rule on a check's metrics: (ids of alerts opened, names of the rules that
    hold, notes for the run)."""
    opened, holding, notes = [], [], []
    for rule in rules:
        value = metrics.get(rule.metric)
        if value is None:
            notes.append(f"{rule.name}: no {rule.metric} in this window")
            continue
        current = _open(session, monitor.id, rule.name)
        if rule.holds(value):
            holding.append(rule.name)
            if current is not None:
                current.count, current.last_at, current.value = current.count + 1, now, float(value)
                notes.append(f"{rule.name}: still open ({current.count} checks)")
            elif _cooling(session, monitor.id, rule, now):
                notes.append(f"{rule.name}: holds, but cooling down after the last alert")
            else:
                row = AlertRow(
                    id=uuid.uuid4().hex, monitor_id=monitor.id, deployment=monitor.deployment,
                    rule=rule.name, severity=rule.severity, status="firing", metric=rule.metric,
                    value=float(value), count=1, first_at=now, last_at=now, run_id=run_id,
                    message=f"{monitor.name}: {rule.metric} = {value:.4g} {rule.op} "
                    f"{rule.threshold:g} ({rule.name})",
                    deliveries=json.dumps(
                        {c.key: {"status": "pending", "attempts": 0} for c in rule.channels}
                    ),
                )  # fmt: skip
                session.add(row)
                opened.append(row.id)
                record_firing((monitor.deployment, monitor.name, rule.name, rule.severity), 1)
        elif current is not None and rule.auto_resolve:
            current.status, current.resolved_at, current.resolved_by = "resolved", now, "monitor"
            current.resolution = f"{rule.metric} = {value:.4g}: the rule no longer holds"
            notes.append(f"{rule.name}: resolved ({rule.metric} = {value:.4g})")
            record_firing((monitor.deployment, monitor.name, rule.name, rule.severity), 0)
    session.flush()
    return opened, holding, notes


def _post(channel: Channel, payload: dict[str, Any]) -> str | None:
    """POST to a webhook, retrying with backoff; None on success, else the last error."""
    import httpx

    error = None
    for attempt in range(ATTEMPTS_PER_TRY):
        try:
            response = httpx.post(
                str(channel.url), json=payload, headers=channel.headers, timeout=5
            )
            if response.status_code < 300:
                return None
            error = f"HTTP {response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if attempt + 1 < ATTEMPTS_PER_TRY:
            time.sleep(0.2 * 2**attempt)
    return error


def deliver(alert: Alert, rule: AlertRule) -> dict[str, Any]:
    """Send the alert to each channel not yet delivered; the new ``deliveries`` state."""
    state = dict(alert.deliveries)
    payload = {"status": alert.status, "alert": alert.model_dump()}
    for channel in rule.channels:
        entry = dict(state.get(channel.key) or {"status": "pending", "attempts": 0})
        if entry["status"] == "delivered" or entry["attempts"] >= MAX_ATTEMPTS:
            continue
        if channel.type == "log":
            log.warning("[%s] %s", alert.severity.upper(), alert.message)
            error = None
        elif channel.type == "prometheus":
            error = None  # the gauge was set when the alert opened; scrapes read it
        else:
            error = _post(channel, payload)
        entry["attempts"] += 1
        if error is None:
            entry.update(status="delivered", at=now_ms())
            entry.pop("error", None)
        else:
            backoff = min(5 * 2 ** entry["attempts"], 3600)
            entry.update(status="failed", error=error, next_at=now_ms() + backoff * 1000)
        state[channel.key] = entry
    return state


def due_deliveries(session: Session, now: int) -> list[AlertRow]:
    """Open alerts with a failed channel whose next attempt is due."""
    rows = session.scalars(select(AlertRow).where(AlertRow.status.in_(OPEN))).all()
    due = []
    for row in rows:
        for entry in json.loads(row.deliveries).values():
            if (
                entry["status"] == "failed"
                and entry["attempts"] < MAX_ATTEMPTS
                and entry.get("next_at", 0) <= now
            ):
                due.append(row)
                break
    return due


def _row(session: Session, alert_id: str) -> AlertRow:
    row: AlertRow = row_by_id(session, AlertRow, alert_id, "alert")
    return row


def _monitor_name(session: Session, row: AlertRow) -> str:
    monitor = session.get(MonitorRow, row.monitor_id)
    return monitor.name if monitor is not None else row.monitor_id


def acknowledge(session: Session, alert_id: str, actor: str) -> Alert:
    """Someone is on it: the alert stays open (and deduplicates) but is marked as seen."""
    row = _row(session, alert_id)
    if row.status == "resolved":
        raise InvalidInput(f"alert {row.id[:8]} is already resolved")
    row.status, row.acknowledged_by, row.acknowledged_at = "acknowledged", actor, now_ms()
    return to_entity(row, _monitor_name(session, row))


def resolve(session: Session, alert_id: str, actor: str, reason: str | None = None) -> Alert:
    row = _row(session, alert_id)
    if row.status == "resolved":
        raise InvalidInput(f"alert {row.id[:8]} is already resolved")
    return _close(session, row, actor, reason)


def _close(session: Session, row: AlertRow, actor: str, reason: str | None) -> Alert:
    row.status, row.resolved_by, row.resolved_at, row.resolution = (
        "resolved", actor, now_ms(), reason
    )  # fmt: skip
    name = _monitor_name(session, row)
    record_firing((row.deployment, name, row.rule, row.severity), 0)
    return to_entity(row, name)


def resolve_incident(
    session: Session, monitor_id: str, alert_id: str, rules: list[str], actor: str, reason: str
) -> list[Alert]:
    """Resolve what a retraining answered: the alert that started it and the open alerts of the
    rules the retraining reacts to (``rules``, the policy's ``on``); others (latency, a
    rollback) are another incident and stay open."""
    rows = session.scalars(
        select(AlertRow).where(
            AlertRow.monitor_id == monitor_id, AlertRow.status.in_(OPEN),
            (AlertRow.id == alert_id) | AlertRow.rule.in_(rules),
        ).order_by(AlertRow.first_at)
    ).all()  # fmt: skip
    return [_close(session, row, actor, reason) for row in rows]


def list_alerts(
    session: Session, *, status: str | None = None, deployment: str | None = None,
    monitor: str | None = None, limit: int = 100,
) -> list[Alert]:  # fmt: skip
    query = select(AlertRow, MonitorRow.name).join(MonitorRow, MonitorRow.id == AlertRow.monitor_id)
    if status == "open":
        query = query.where(AlertRow.status.in_(OPEN))
    elif status is not None:
        if status not in (*OPEN, "resolved"):
            raise InvalidInput("status must be open, firing, acknowledged or resolved")
        query = query.where(AlertRow.status == status)
    if deployment is not None:
        query = query.where(AlertRow.deployment == deployment)
    if monitor is not None:
        query = query.where(MonitorRow.name == monitor)
    rows = session.execute(query.order_by(AlertRow.last_at.desc()).limit(limit)).all()
    return [to_entity(row, name) for row, name in rows]
