"""Stored evaluations: a model (usually a registered version) measured on data (usually a
dataset version), with every metric, slice, curve and plot the evaluation produced."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsloop.store.base import Base

ID = String(32)


class EvaluationRow(Base):
    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_model_version_id", "model_version_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    model_version_id: Mapped[str | None] = mapped_column(ID)
    model_ref: Mapped[str | None] = mapped_column(String(300))
    dataset_version_id: Mapped[str | None] = mapped_column(ID)
    dataset_ref: Mapped[str | None] = mapped_column(String(300))
    task: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(250))
    report: Mapped[str] = mapped_column(Text)  # metrics, slices, confusion, calibration, plots
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(250))
