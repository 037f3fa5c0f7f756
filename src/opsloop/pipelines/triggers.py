"""Triggers: a pipeline run on a cron schedule, on each new version of a dataset, on each alert of
a monitor, or when a webhook is called, exactly once per reason, with the reason on the run.

Every reason to run is a *firing* with a key that names it (the schedule slot, the data version,
the alert id, the webhook's idempotency key), and ``(trigger, key)`` is unique in the database.
So two schedulers that see the same slot, a webhook retried by its sender, or a scheduler that
restarts mid-way all end up with one firing. A firing is then claimed by one scheduler with a
compare-and-set (``pending`` → ``running``) and run; the run is tagged ``opsloop.trigger``
(``cron:2026-11-24T14:05Z``, ``dataset:churn@4``, ``alert:<id>``, ``webhook:<key>``).

A cron trigger fires the latest slot that is due, not every slot missed while nothing was
running (the scheduler catches up once, not once per missed slot). A dataset trigger fires for
versions added after it was created, and passes the version as the param ``param``.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import model_validator
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import OpsloopError
from opsloop.governance import audit
from opsloop.governance.acting import via
from opsloop.kernel.code_policy import ANY_CODE
from opsloop.kernel.code_policy import CodePolicy
from opsloop.kernel.timeutil import now_ms
from opsloop.pipelines.orphans import running_in
from opsloop.pipelines.orphans import this_process
from opsloop.pipelines.tables import FiringRow
from opsloop.pipelines.tables import TriggerRow
from opsloop.store.columns import named_row
from opsloop.store.columns import newest_rows
from opsloop.store.database import dialect_insert

__all__ = [
    "Firing",
    "Trigger",
    "TriggerCreate",
    "collect_due",
    "create_trigger",
    "delete_trigger",
    "fire",
    "get_trigger",
    "list_firings",
    "list_triggers",
    "pending_firings",
    "run_firing",
]

Kind = Literal["cron", "dataset", "alert", "webhook"]


class TriggerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=250, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    pipeline: str = Field(description="MODULE:NAME or FILE.py:NAME of a @pipeline")
    kind: Kind
    params: dict[str, Any] = Field(default_factory=dict)
    cron: str | None = Field(None, description="for kind=cron: a cron expression, in UTC")
    dataset: str | None = Field(None, description="for kind=dataset: the dataset name")
    monitor: str | None = Field(None, description="for kind=alert: the monitor")
    rule: str | None = Field(None, description="for kind=alert: only this rule's alerts")
    param: str = Field("data", description="the param that receives the version or alert id")

    @model_validator(mode="after")
    def _fits_kind(self) -> TriggerCreate:
        from croniter import croniter

        if ":" not in self.pipeline:
            raise ValueError("pipeline: name it as MODULE:NAME or FILE.py:NAME")
        needs = {"cron": "cron", "dataset": "dataset", "alert": "monitor"}.get(self.kind)
        if needs is not None and getattr(self, needs) is None:
            raise ValueError(f"a {self.kind} trigger needs {needs}")
        if self.kind == "cron" and not croniter.is_valid(str(self.cron)):
            raise ValueError(f"{self.cron!r} is not a cron expression (e.g. '*/15 * * * *')")
        return self


class Trigger(TriggerCreate):
    id: str
    enabled: bool
    cursor: str | None
    created_at: int
    created_by: str


class Firing(BaseModel):
    id: str
    trigger: str
    key: str
    reason: str
    params: dict[str, Any]
    status: str
    run_id: str | None
    message: str | None
    created_at: int
    updated_at: int


_SPEC_FIELDS = ("cron", "dataset", "monitor", "rule", "param")


def _entity(row: TriggerRow) -> Trigger:
    spec = json.loads(row.spec)
    return Trigger(
        id=row.id, name=row.name, pipeline=row.pipeline, kind=row.kind,  # type: ignore[arg-type]
        params=json.loads(row.params), enabled=bool(row.enabled), cursor=row.cursor,
        created_at=row.created_at, created_by=row.created_by, **spec,
    )  # fmt: skip


def _firing(row: FiringRow, trigger: str) -> Firing:
    return Firing(
        id=row.id, trigger=trigger, key=row.key, reason=row.reason,
        params=json.loads(row.params), status=row.status, run_id=row.run_id,
        message=row.message, created_at=row.created_at, updated_at=row.updated_at,
    )  # fmt: skip


def _row(session: Session, name: str) -> TriggerRow:
    row: TriggerRow = named_row(session, TriggerRow, name, "trigger")
    return row


def _latest_version(session: Session, dataset: str) -> int:
    from opsloop.data.tables import DatasetRow
    from opsloop.data.tables import DatasetVersionRow

    latest = session.scalar(
        select(func.max(DatasetVersionRow.number))
        .join(DatasetRow, DatasetRow.id == DatasetVersionRow.dataset_id)
        .where(DatasetRow.name == dataset)
    )
    return int(latest or 0)


def create_trigger(session: Session, body: TriggerCreate, actor: str) -> Trigger:
    if session.scalars(select(TriggerRow.id).where(TriggerRow.name == body.name)).first():
        raise Conflict(f"trigger {body.name!r} already exists")
    now = now_ms()
    cursor: str | None = None
    if body.kind == "cron":
        cursor = _slot_key(datetime.fromtimestamp(now / 1000, UTC))
    elif body.kind == "dataset":
        cursor = str(_latest_version(session, str(body.dataset)))  # only new versions fire
    elif body.kind == "alert":
        cursor = str(now)
    row = TriggerRow(
        id=uuid.uuid4().hex, name=body.name, pipeline=body.pipeline, kind=body.kind,
        params=json.dumps(body.params), spec=json.dumps(body.model_dump(include=set(_SPEC_FIELDS))),
        enabled=1, cursor=cursor, created_at=now, created_by=actor,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return _entity(row)


def get_trigger(session: Session, name: str) -> Trigger:
    return _entity(_row(session, name))


def list_triggers(session: Session) -> list[Trigger]:
    return [_entity(r) for r in session.scalars(select(TriggerRow).order_by(TriggerRow.name))]


def delete_trigger(session: Session, name: str) -> None:
    session.delete(_row(session, name))


def fire(
    session: Session, name: str, key: str | None, reason: str, params: dict[str, Any] | None = None
) -> tuple[Firing, bool]:
    """Record a reason to run ``name``'s pipeline; (the firing, whether it is new). A key that
    already fired returns the earlier firing: a retried webhook runs nothing twice."""
    trigger = _row(session, name)
    key = key or uuid.uuid4().hex
    if len(key) > 250:
        raise InvalidInput("the idempotency key is longer than 250 characters")
    now = now_ms()
    table = FiringRow.__table__
    inserted = session.connection().execute(  # RETURNING: psycopg's rowcount here is -1
        dialect_insert(session, table)
        .values(
            id=uuid.uuid4().hex, trigger_id=trigger.id, key=key, reason=reason,
            params=json.dumps(params or {}), status="pending", created_at=now, updated_at=now,
        )
        .on_conflict_do_nothing()
        .returning(table.c.id)
    ).first()  # fmt: skip
    row = session.scalars(
        select(FiringRow).where(FiringRow.trigger_id == trigger.id, FiringRow.key == key)
    ).one()
    return _firing(row, name), inserted is not None


def _slot_key(slot: datetime) -> str:
    return slot.strftime("%Y-%m-%dT%H:%MZ")


def _due_events(
    session: Session, row: TriggerRow, now: int
) -> list[tuple[str, str, dict[str, Any], str]]:
    """(key, reason, params, new cursor) for each event of ``row`` past its cursor."""
    from croniter import croniter

    spec = json.loads(row.spec)
    if row.kind == "cron":
        slot = croniter(spec["cron"], datetime.fromtimestamp(now / 1000, UTC)).get_prev(datetime)
        key = _slot_key(slot)
        if row.cursor is not None and key <= row.cursor:
            return []
        return [(key, f"schedule {spec['cron']} (slot {key})", {}, key)]
    if row.kind == "dataset":
        latest = _latest_version(session, spec["dataset"])
        seen = int(row.cursor or 0)
        if latest <= seen:
            return []
        ref = f"{spec['dataset']}@{latest}"
        return [(ref, f"new version {ref}", {spec["param"]: ref}, str(latest))]
    if row.kind == "alert":
        from opsloop.monitoring.tables import AlertRow
        from opsloop.monitoring.tables import MonitorRow

        query = (
            select(AlertRow.id, AlertRow.first_at, AlertRow.message)
            .join(MonitorRow, MonitorRow.id == AlertRow.monitor_id)
            .where(MonitorRow.name == spec["monitor"], AlertRow.first_at > int(row.cursor or 0))
            .order_by(AlertRow.first_at)
        )
        if spec.get("rule"):
            query = query.where(AlertRow.rule == spec["rule"])
        return [
            (alert_id, f"alert {alert_id[:8]}: {message}", {spec["param"]: alert_id}, str(first))
            for alert_id, first, message in session.execute(query)
        ]
    return []


def collect_due(store: Any, now: int | None = None) -> list[str]:
    """Record a firing for every due event of every enabled trigger; the ids of new firings."""
    now = now if now is not None else now_ms()
    created = []
    with store.read() as session:
        ids = list(session.scalars(select(TriggerRow.id).where(TriggerRow.enabled == 1)))
    for trigger_id in ids:
        with store.write() as session:
            row = session.get(TriggerRow, trigger_id)
            if row is None:
                continue
            for key, reason, params, cursor in _due_events(session, row, now):
                firing, new = fire(session, row.name, f"{row.kind}:{key}", reason, params)
                if new:
                    created.append(firing.id)
                session.execute(
                    update(TriggerRow)
                    .where(TriggerRow.id == row.id, TriggerRow.cursor == row.cursor)
                    .values(cursor=cursor)
                )
    return created


def pending_firings(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(FiringRow.id).where(FiringRow.status == "pending").order_by(FiringRow.created_at)
        )
    )


def _set(store: Any, firing_id: str, **values: Any) -> None:
    with store.write() as session:
        session.execute(
            update(FiringRow).where(FiringRow.id == firing_id).values(updated_at=now_ms(), **values)
        )
        if "status" in values:  # the scheduler's doing, for the trigger's creator: audited
            author = session.scalar(
                select(TriggerRow.created_by)
                .join(FiringRow, FiringRow.trigger_id == TriggerRow.id)
                .where(FiringRow.id == firing_id)
            )
            audit.append(session, actor=author or "scheduler",
                         action=via(f"firing {values['status']}", "scheduler"),
                         resource=f"firings/{firing_id}", outcome=200)  # fmt: skip


def run_firing(
    client: Any, store: Any, firing_id: str, code: CodePolicy = ANY_CODE
) -> Firing | None:
    """Claim a pending firing (``pending`` → ``running``, once) and run its pipeline, if
    ``code`` allows importing it; None when another scheduler claimed it first."""
    from opsloop.pipelines.loading import load_pipeline
    from opsloop.pipelines.runner import PipelineFailed

    with store.write() as session:
        claimed = session.execute(
            update(FiringRow)
            .where(FiringRow.id == firing_id, FiringRow.status == "pending")
            .values(status="running", message=running_in(this_process()), updated_at=now_ms())
        ).rowcount
        if not claimed:
            return None
        firing = session.get(FiringRow, firing_id)
        assert firing is not None
        trigger = session.get(TriggerRow, firing.trigger_id)
        assert trigger is not None
        name, target, key = trigger.name, trigger.pipeline, firing.key
        params = {**json.loads(trigger.params), **json.loads(firing.params)}
    tags = {"opsloop.trigger": key, "opsloop.trigger.name": name, "opsloop.firing": firing_id}
    try:
        result = load_pipeline(target, code).run(client=client, tags=tags, **params)
        _set(store, firing_id, status="succeeded", run_id=result.run_id, message=None)
    except PipelineFailed as exc:
        run = exc.details.get("pipeline")
        _set(store, firing_id, status="failed", message=exc.message,
             run_id=getattr(run, "run_id", None))  # fmt: skip
    except OpsloopError as exc:
        _set(store, firing_id, status="failed", message=exc.message)
    except Exception as exc:  # the user's pipeline may raise anything: keep it on record
        _set(store, firing_id, status="failed", message=f"{type(exc).__name__}: {exc}")
    with store.read() as session:
        row = session.get(FiringRow, firing_id)
        assert row is not None
        return _firing(row, name)


def list_firings(session: Session, name: str, limit: int = 20) -> list[Firing]:
    trigger = _row(session, name)
    rows = newest_rows(session, FiringRow.trigger_id, trigger.id, FiringRow.created_at, limit)
    return [_firing(r, name) for r in rows]
