"""Annotation queues and their items: traces waiting for, claimed by, or scored by reviewers."""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from opsloop.store import columns as col
from opsloop.store.base import Base


class AnnotationQueueRow(col.Named, col.Described, col.CreatedAt, col.CreatedBy, Base):
    __tablename__ = "annotation_queues"

    score_configs: Mapped[str] = mapped_column(Text)  # JSON list of ScoreConfig


class AnnotationItemRow(col.IdKey, col.CreatedAt, Base):
    __tablename__ = "annotation_items"
    __table_args__ = (
        UniqueConstraint("queue_id", "trace_id"),
        Index("ix_annotation_items_queue_status", "queue_id", "status", "created_at"),
    )

    queue_id: Mapped[str] = col.owner_ref("annotation_queues")
    trace_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(12))  # pending, done, skipped
    claimed_by: Mapped[str | None] = mapped_column(String(250))
    claimed_at: Mapped[int | None] = mapped_column(BigInteger)
    completed_by: Mapped[str | None] = mapped_column(String(250))
    completed_at: Mapped[int | None] = mapped_column(BigInteger)
