"""What monitors, alerts and the loop look like at the edges (SDK, REST, CLI)."""

from __future__ import annotations

import json
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator

from opsloop.kernel.bounds import PositiveInt64

__all__ = [
    "Alert",
    "AlertRule",
    "Channel",
    "LoopRun",
    "Monitor",
    "MonitorCreate",
    "MonitorRebaseline",
    "MonitorReference",
    "MonitorRevert",
    "MonitorRun",
    "MonitorSpec",
    "RetrainPolicy",
    "Window",
    "monitor_from_row",
]

_STRICT = ConfigDict(extra="forbid")


class Window(BaseModel):
    """Which slice of the prediction log a check reads.

    ``by="time"``: the last ``size`` seconds (sliding) or the last complete ``size``-second
    period (tumbling, each period checked once). ``by="count"``: the last ``size`` requests
    (sliding) or the next ``size`` requests after the last checked one (tumbling).
    """

    model_config = _STRICT
    by: Literal["time", "count"] = "count"
    size: int = Field(500, gt=0)
    mode: Literal["sliding", "tumbling"] = "sliding"
    min_rows: int = Field(30, ge=1, description="fewer rows give no verdict")


class Channel(BaseModel):
    model_config = _STRICT
    type: Literal["webhook", "log", "prometheus"]
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _url(self) -> Channel:
        if self.type == "webhook" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError("a webhook channel needs an http(s) url")
        return self

    @property
    def key(self) -> str:
        return f"webhook:{self.url}" if self.type == "webhook" else self.type


_OPS = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__}


class AlertRule(BaseModel):
    """Open an alert when ``metric op threshold`` holds on a check.

    While it is open, later checks that find it true only count (deduplication); it resolves
    by itself when a check finds it false (``auto_resolve``), and a new one cannot open within
    ``cooldown_seconds`` of the last one resolving.
    """

    model_config = _STRICT
    name: str = Field(min_length=1, max_length=250)
    metric: str
    op: Literal[">", ">=", "<", "<="] = ">="
    threshold: float
    severity: Literal["info", "warning", "critical"] = "warning"
    cooldown_seconds: float = Field(600, ge=0)
    auto_resolve: bool = True
    channels: list[Channel] = Field(default_factory=lambda: [Channel(type="log")])

    def holds(self, value: float) -> bool:
        return bool(_OPS[self.op](float(value), float(self.threshold)))


class RetrainPolicy(BaseModel):
    """What the loop does when one of ``on`` (rule names) opens an alert: export the labelled
    traffic as a data version (``export_dataset``), run ``pipeline`` with ``params`` (plus the
    new version as ``data_param``), take the model version it registered through the gate
    (``gate_policy`` or the model's stored one), and roll it out with ``rollout``."""

    model_config = _STRICT
    pipeline: str = Field(description="MODULE:NAME or FILE.py:NAME of a @pipeline")
    on: list[str] = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    export_dataset: str | None = None
    data_param: str = "live_data"
    gate_policy: dict[str, Any] | None = None
    rollout_steps: list[dict[str, Any]] = Field(
        default_factory=lambda: [{"set_weight": 20}, {"analysis": True}, {"set_weight": 100}]
    )
    rollout_checks: list[dict[str, Any]] = Field(
        default_factory=lambda: [{"metric": "error_rate", "max": 0.05, "min_samples": 20}]
    )
    max_inconclusive_seconds: float = 600


class MonitorSpec(BaseModel):
    model_config = _STRICT
    window: Window = Field(default_factory=Window)
    features: list[str] | None = None
    target: str | None = None
    stattest: str | None = None
    column_stattests: dict[str, str] = Field(default_factory=dict)
    drift_share: float = Field(0.5, gt=0, le=1)
    every_seconds: float = Field(300, gt=0)
    rules: list[AlertRule] = Field(
        default_factory=lambda: [
            AlertRule(name="data-drift", metric="dataset_drift", op=">=", threshold=1,
                      severity="critical")
        ]
    )  # fmt: skip
    retrain: RetrainPolicy | None = None

    @field_validator("stattest")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from opsloop.monitoring.stattests import STATTESTS  # NumPy: not for listing monitors

        if value not in STATTESTS:
            raise ValueError(f"unknown stattest {value!r}; choose one of {', '.join(STATTESTS)}")
        return value

    @model_validator(mode="after")
    def _rules(self) -> MonitorSpec:
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("alert rule names must be unique")
        if self.retrain is not None:
            unknown = set(self.retrain.on) - set(names)
            if unknown:
                raise ValueError(f"retrain.on names unknown rules: {', '.join(sorted(unknown))}")
        return self


class MonitorCreate(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1, max_length=250, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    deployment: str
    reference: str = Field(description="the reference data version, NAME@N")
    spec: MonitorSpec = Field(default_factory=MonitorSpec)


class Monitor(BaseModel):
    id: str
    name: str
    deployment: str
    reference: str
    spec: MonitorSpec
    enabled: bool
    next_run_at: int
    columns: list[str]
    baseline: dict[str, Any]
    created_at: int
    created_by: str


def monitor_from_row(row: Any, columns: list[str]) -> Monitor:
    """The entity of a ``monitors`` row (an ORM row, or a plain one with the same names), given
    the names of its profile's columns (the caller reads them: the profile can be megabytes)."""
    baseline = json.loads(row.baseline)
    return Monitor(
        id=row.id, name=row.name, deployment=row.deployment, reference=baseline["reference"],
        spec=MonitorSpec.model_validate_json(row.spec), enabled=bool(row.enabled),
        next_run_at=row.next_run_at, columns=columns,
        baseline={k: v for k, v in baseline.items() if k != "calibration"},
        created_at=row.created_at, created_by=row.created_by,
    )  # fmt: skip


class MonitorReference(BaseModel):
    """One entry of a monitor's reference history; the highest ``number`` is ``current``."""

    number: int
    monitor: str
    action: Literal["created", "rebaselined", "reverted"]
    reference: str = Field(description="the data version, NAME@N")
    model: str = Field(description="the model version whose predictions were profiled")
    reason: str
    loop_id: str | None = None
    metrics: dict[str, Any] = Field(
        default_factory=dict, description="the model's quality on the reference, when labelled"
    )
    current: bool
    created_at: int
    created_by: str


class MonitorRebaseline(BaseModel):
    """Profile ``reference`` with the deployment's stable model and make it the monitor's."""

    model_config = _STRICT
    reference: str = Field(min_length=1, max_length=300, description="data version NAME@N")
    reason: str | None = Field(None, max_length=2000)


class MonitorRevert(BaseModel):
    """Go back to history entry ``to`` (default: the one before the current one)."""

    model_config = _STRICT
    to: PositiveInt64 | None = None
    reason: str | None = Field(None, max_length=2000)


class MonitorRun(BaseModel):
    id: str
    monitor: str
    started_at: int
    window_start: int | None
    window_end: int | None
    rows: int
    status: str
    metrics: dict[str, Any]
    message: str | None
    alerts: list[str] = Field(default_factory=list)
    loops: list[str] = Field(default_factory=list)
    report: dict[str, Any] | None = None


class Alert(BaseModel):
    id: str
    monitor: str
    deployment: str
    rule: str
    severity: str
    status: str
    metric: str
    value: float | None
    message: str
    count: int
    first_at: int
    last_at: int
    acknowledged_by: str | None = None
    acknowledged_at: int | None = None
    resolved_by: str | None = None
    resolved_at: int | None = None
    resolution: str | None = Field(None, description='why it resolved, e.g. "resolved by v2"')
    deliveries: dict[str, Any] = Field(default_factory=dict)


class LoopRun(BaseModel):
    id: str
    monitor: str
    deployment: str
    alert_id: str
    stage: str
    pipeline_run_id: str | None
    candidate: int | None
    rollout_id: str | None
    data_ref: str | None
    message: str | None
    history: list[dict[str, Any]]
    created_at: int
    updated_at: int
