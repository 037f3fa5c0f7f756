"""Annotation queues and their items: traces waiting for, claimed by, or scored by reviewers."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from opsloop.store.base import Base


class AnnotationQueueRow(Base):
    __tablename__ = "annotation_queues"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(250), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    score_configs: Mapped[str] = mapped_column(Text)  # JSON list of ScoreConfig
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(250))


class AnnotationItemRow(Base):
    __tablename__ = "annotation_items"
    __table_args__ = (
        UniqueConstraint("queue_id", "trace_id"),
        Index("ix_annotation_items_queue_status", "queue_id", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    queue_id: Mapped[str] = mapped_column(ForeignKey("annotation_queues.id", ondelete="CASCADE"))
    trace_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(12))  # pending, done, skipped
    claimed_by: Mapped[str | None] = mapped_column(String(250))
    claimed_at: Mapped[int | None] = mapped_column(BigInteger)
    completed_by: Mapped[str | None] = mapped_column(String(250))
    completed_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
