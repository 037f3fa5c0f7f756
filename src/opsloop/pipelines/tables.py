"""Pipeline triggers and their firings (one row per reason to run, unique per trigger)."""

from __future__ import annotations

from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from opsloop.store import columns as col
from opsloop.store.base import Base


class TriggerRow(col.Named, col.CreatedAt, col.CreatedBy, Base):
    __tablename__ = "pipeline_triggers"

    pipeline: Mapped[str] = mapped_column(String(500))  # MODULE:NAME or FILE.py:NAME
    params: Mapped[str] = mapped_column(Text)  # JSON
    kind: Mapped[str] = mapped_column(String(16))  # cron, dataset, alert, webhook
    spec: Mapped[str] = mapped_column(Text)  # JSON TriggerSpec
    enabled: Mapped[int] = mapped_column(Integer)
    cursor: Mapped[str | None] = mapped_column(String(250))  # the last event already fired


class FiringRow(col.IdKey, col.CreatedAt, col.UpdatedAt, Base):
    """A reason to run the trigger's pipeline; ``key`` makes each reason fire once."""

    __tablename__ = "pipeline_firings"
    __table_args__ = (
        UniqueConstraint("trigger_id", "key"),
        Index("ix_pipeline_firings_status", "status", "created_at"),
    )

    trigger_id: Mapped[str] = col.owner_ref("pipeline_triggers")
    key: Mapped[str] = mapped_column(String(250))  # the slot, the version, the alert, the key
    reason: Mapped[str] = mapped_column(Text)
    params: Mapped[str] = mapped_column(Text)  # JSON: what this firing adds to the params
    status: Mapped[str] = mapped_column(String(16))  # pending, running, succeeded, failed
    run_id: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text)
