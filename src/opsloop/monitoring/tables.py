"""Monitors, their runs, alert rules, alerts, retraining policies and the loop runs they start."""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy import Float
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from opsloop.store import columns as col
from opsloop.store.base import Base


class MonitorRow(col.Named, col.CreatedAt, col.CreatedBy, Base):
    """A monitor on a deployment: its spec and the reference profile computed at creation."""

    __tablename__ = "monitors"

    deployment: Mapped[str] = mapped_column(String(250), index=True)
    spec: Mapped[str] = mapped_column(Text)  # JSON MonitorSpec
    profile: Mapped[str] = mapped_column(Text)  # JSON TableProfile (features + prediction)
    baseline: Mapped[str] = mapped_column(Text)  # JSON: reference metrics, CBPE calibration
    enabled: Mapped[int] = mapped_column(Integer)
    next_run_at: Mapped[int] = mapped_column(BigInteger)
    last_window_end: Mapped[int | None] = mapped_column(BigInteger)  # tumbling windows done


class MonitorRunRow(col.IdKey, Base):
    __tablename__ = "monitor_runs"
    __table_args__ = (Index("ix_monitor_runs_monitor_at", "monitor_id", "started_at"),)

    monitor_id: Mapped[str] = col.owner_ref("monitors")
    started_at: Mapped[int] = mapped_column(BigInteger)
    window_start: Mapped[int | None] = mapped_column(BigInteger)
    window_end: Mapped[int | None] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # ok, alerting, no_data
    metrics: Mapped[str] = mapped_column(Text)  # JSON name -> number
    report: Mapped[str] = mapped_column(Text)  # JSON drift report (with plots)
    message: Mapped[str | None] = mapped_column(Text)


class AlertRow(col.IdKey, Base):
    """One alert: opened by a rule, deduplicated while open, acknowledged, resolved."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_monitor_rule_status", "monitor_id", "rule", "status"),)

    monitor_id: Mapped[str] = col.owner_ref("monitors")
    deployment: Mapped[str] = mapped_column(String(250), index=True)
    rule: Mapped[str] = mapped_column(String(250))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # firing, acknowledged, resolved
    metric: Mapped[str] = mapped_column(String(250))
    value: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer)  # checks that found it still true
    first_at: Mapped[int] = mapped_column(BigInteger)
    last_at: Mapped[int] = mapped_column(BigInteger)
    run_id: Mapped[str | None] = mapped_column(String(32))  # the monitor run that opened it
    acknowledged_by: Mapped[str | None] = mapped_column(String(250))
    acknowledged_at: Mapped[int | None] = mapped_column(BigInteger)
    resolved_by: Mapped[str | None] = mapped_column(String(250))
    resolved_at: Mapped[int | None] = mapped_column(BigInteger)
    deliveries: Mapped[str] = mapped_column(Text)  # JSON channel -> {status, attempts, error}
    resolution: Mapped[str | None] = mapped_column(Text)  # why it resolved ("resolved by v2")


class MonitorReferenceRow(col.IdKey, col.CreatedAt, col.CreatedBy, Base):
    """One reference a monitor was (re-)baselined on, kept so a re-baseline can be undone.

    The monitor's own ``profile`` and ``baseline`` are the current entry's, copied there so a
    check reads one row; every entry keeps its own copy, so reverting restores the reference
    exactly as it was profiled (with the model of the time) without reading any data again."""

    __tablename__ = "monitor_references"
    __table_args__ = (UniqueConstraint("monitor_id", "number"),)

    monitor_id: Mapped[str] = col.owner_ref("monitors")
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per monitor; the highest is current
    action: Mapped[str] = mapped_column(String(16))  # created, rebaselined, reverted
    reference: Mapped[str] = mapped_column(String(300))  # the data version, NAME@N
    model: Mapped[str] = mapped_column(String(300))  # the model version that scored it
    reason: Mapped[str] = mapped_column(Text)
    loop_id: Mapped[str | None] = mapped_column(String(32))  # the loop run that re-baselined
    profile: Mapped[str] = mapped_column(Text)  # JSON TableProfile, as on MonitorRow
    baseline: Mapped[str] = mapped_column(Text)  # JSON, as on MonitorRow


class LoopRunRow(col.IdKey, col.CreatedAt, col.UpdatedAt, Base):
    """One turn of the loop: an alert's retraining, its candidate, gate and rollout."""

    __tablename__ = "loop_runs"
    __table_args__ = (UniqueConstraint("alert_id"),)  # an alert starts at most one retraining

    monitor_id: Mapped[str] = col.owner_ref("monitors")
    deployment: Mapped[str] = mapped_column(String(250), index=True)
    alert_id: Mapped[str] = mapped_column(String(32))
    stage: Mapped[str] = mapped_column(String(16))
    pipeline_run_id: Mapped[str | None] = mapped_column(String(32))
    candidate: Mapped[int | None] = mapped_column(Integer)
    rollout_id: Mapped[str | None] = mapped_column(String(32))
    data_ref: Mapped[str | None] = mapped_column(String(300))
    message: Mapped[str | None] = mapped_column(Text)
    history: Mapped[str] = mapped_column(Text)  # JSON list of {at, stage, message}
