"""The lineage graph's one table: typed edges between any two things opsloop records.

A node is ``(type, id)``: ``("run", run_id)``, ``("dataset_version", version_key)``, and later
model versions, deployments and evaluations. Every domain writes its edges here, so "which data
made this model" is one graph walk, whatever produced the edges.
"""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from opsloop.store.base import Base


class LineageEdgeRow(Base):
    __tablename__ = "lineage_edges"
    __table_args__ = (
        UniqueConstraint(
            "source_type",
            "source_id",
            "target_type",
            "target_id",
            "relation",
            name="uq_lineage_edges_edge",
        ),
        Index("ix_lineage_edges_target", "target_type", "target_id"),
    )

    # SQLite only autoincrements an INTEGER PRIMARY KEY, so BIGINT becomes INTEGER there.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    source_type: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(250))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(250))
    relation: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[int] = mapped_column(BigInteger)
