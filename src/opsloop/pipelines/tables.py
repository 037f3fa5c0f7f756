"""Pipeline triggers and their firings (one row per reason to run, unique per trigger)."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from opsloop.store.base import Base


class TriggerRow(Base):
    __tablename__ = "pipeline_triggers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(250), unique=True)
    pipeline: Mapped[str] = mapped_column(String(500))  # MODULE:NAME or FILE.py:NAME
    params: Mapped[str] = mapped_column(Text)  # JSON
    kind: Mapped[str] = mapped_column(String(16))  # cron, dataset, alert, webhook
    spec: Mapped[str] = mapped_column(Text)  # JSON TriggerSpec
    enabled: Mapped[int] = mapped_column(Integer)
    cursor: Mapped[str | None] = mapped_column(String(250))  # the last event already fired
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(250))


class FiringRow(Base):
    """A reason to run the trigger's pipeline; ``key`` makes each reason fire once."""

    __tablename__ = "pipeline_firings"
    __table_args__ = (
        UniqueConstraint("trigger_id", "key"),
        Index("ix_pipeline_firings_status", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    trigger_id: Mapped[str] = mapped_column(ForeignKey("pipeline_triggers.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250))  # the slot, the version, the alert, the key
    reason: Mapped[str] = mapped_column(Text)
    params: Mapped[str] = mapped_column(Text)  # JSON: what this firing adds to the params
    status: Mapped[str] = mapped_column(String(16))  # pending, running, succeeded, failed
    run_id: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
