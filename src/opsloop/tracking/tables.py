"""Tracking's tables: experiments, runs, params, tags, metric history, artifacts.

Two metric tables serve two access paths. ``metrics`` is the full history, keyed by every
column so a retried batch inserts nothing twice (``ON CONFLICT DO NOTHING``) and a history read
is one index range; on SQLite it is a ``WITHOUT ROWID`` table, so that key *is* the table.
``latest_metrics`` keeps one row per (run, key), the value at the highest step, indexed by
(key, value) so ``metrics.acc > 0.9`` over ten thousand runs is an index scan. It is clustered
by its key on SQLite (``WITHOUT ROWID``), so that index covers the run id and a page of runs'
metrics is one range read per run.
"""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy import Double
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from opsloop.store import columns as col
from opsloop.store.base import Base

KEY = String(250)


class ExperimentRow(col.Named, col.Described, col.CreatedAt, col.UpdatedAt, Base):
    __tablename__ = "experiments"

    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="active")


class ExperimentTagRow(col.TagColumns, Base):
    __tablename__ = "experiment_tags"

    experiment_id: Mapped[str] = col.owner_key("experiments")


class RunRow(col.IdKey, Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_experiment_id_start_time", "experiment_id", "start_time"),)

    experiment_id: Mapped[str] = col.owner_ref("experiments")
    name: Mapped[str] = mapped_column(String(250))
    status: Mapped[str] = mapped_column(String(16))
    start_time: Mapped[int] = mapped_column(BigInteger)
    end_time: Mapped[int | None] = mapped_column(BigInteger)
    parent_run_id: Mapped[str | None] = mapped_column(col.ID, index=True)
    user_id: Mapped[str] = mapped_column(String(250))
    notes: Mapped[str | None] = mapped_column(Text)
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="active")


class ParamRow(col.TagColumns, Base):
    __tablename__ = "params"
    __table_args__ = (Index("ix_params_key", "key"),)

    run_id: Mapped[str] = col.owner_key("runs")


class RunTagRow(col.TagColumns, Base):
    __tablename__ = "run_tags"
    __table_args__ = (Index("ix_run_tags_key", "key"),)

    run_id: Mapped[str] = col.owner_key("runs")


class MetricRow(Base):
    __tablename__ = "metrics"
    __table_args__ = {"sqlite_with_rowid": False}

    run_id: Mapped[str] = col.owner_key("runs")
    key: Mapped[str] = mapped_column(KEY, primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    timestamp: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[float] = mapped_column(Double, primary_key=True)


class LatestMetricRow(Base):
    __tablename__ = "latest_metrics"
    __table_args__ = (
        Index("ix_latest_metrics_key_value", "key", "value", postgresql_include=["run_id"]),
        {"sqlite_with_rowid": False},
    )

    run_id: Mapped[str] = col.owner_key("runs")
    key: Mapped[str] = mapped_column(KEY, primary_key=True)
    value: Mapped[float] = mapped_column(Double)
    step: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class ArtifactRow(col.CreatedAt, Base):
    __tablename__ = "artifacts"

    run_id: Mapped[str] = col.owner_key("runs")
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
