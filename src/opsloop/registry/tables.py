"""The registry's tables: registered models, their immutable versions, tags, aliases, and the
history of every alias move (gated promotions, forced moves, rejections, manual sets), and
stored evaluations: a version measured on data (usually a dataset version), with every metric,
slice, curve and plot the evaluation produced.

A version's package manifest (path → digest, size) is stored compressed in its row, as data
versions store theirs: loading a model wants the whole manifest at once. ``package_id`` is the
manifest's BLAKE3 hash, so two versions holding the same bytes are visibly the same package.
"""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy import Boolean
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from opsloop.store import columns as col
from opsloop.store.base import Base


class RegisteredModelRow(
    col.Named, col.Described, col.CreatedAt, col.UpdatedAt, col.CreatedBy, Base
):
    __tablename__ = "registered_models"

    gate_policy: Mapped[str | None] = mapped_column(Text)


class RegisteredModelTagRow(col.TagColumns, Base):
    __tablename__ = "registered_model_tags"

    model_id: Mapped[str] = col.owner_key("registered_models")


class ModelVersionRow(col.IdKey, col.CreatedAt, col.CreatedBy, Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "number"),
        Index("ix_model_versions_run_id", "run_id"),
        Index("ix_model_versions_package_id", "package_id"),
    )

    model_id: Mapped[str] = col.owner_ref("registered_models")
    number: Mapped[int] = mapped_column(Integer)
    package_id: Mapped[str] = mapped_column(String(64))
    manifest: Mapped[bytes] = mapped_column(LargeBinary)
    file_count: Mapped[int] = mapped_column(Integer)
    total_bytes: Mapped[int] = mapped_column(BigInteger)
    flavor: Mapped[str] = mapped_column(String(32))
    package: Mapped[str] = mapped_column(Text)  # the package's opsloop-model.json, as stored
    source: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(col.ID)
    description: Mapped[str | None] = mapped_column(Text)
    card: Mapped[str | None] = mapped_column(Text)  # what people wrote: intended use, limits


class ModelVersionTagRow(col.TagColumns, Base):
    __tablename__ = "model_version_tags"

    version_pk: Mapped[str] = col.owner_key("model_versions")


class ModelAliasRow(col.AliasColumns, Base):
    __tablename__ = "model_aliases"

    model_id: Mapped[str] = col.owner_key("registered_models")


class AliasEventRow(col.CreatedAt, col.CreatedBy, Base):
    """One decision about an alias: who moved it where, why, and the gate's numbers."""

    __tablename__ = "model_alias_events"
    __table_args__ = (Index("ix_model_alias_events_model_id_alias", "model_id", "alias"),)

    # SQLite only autoincrements an INTEGER PRIMARY KEY, so BIGINT becomes INTEGER there.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    model_id: Mapped[str] = col.owner_ref("registered_models")
    alias: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # set, delete, promoted, rejected, forced
    from_number: Mapped[int | None] = mapped_column(Integer)
    to_number: Mapped[int | None] = mapped_column(Integer)
    moved: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    verdict: Mapped[str | None] = mapped_column(Text)  # the gate's report, every number used


class EvaluationRow(col.IdKey, col.CreatedAt, col.CreatedBy, Base):
    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_model_version_id", "model_version_id"),)

    model_version_id: Mapped[str | None] = mapped_column(col.ID)
    model_ref: Mapped[str | None] = mapped_column(String(300))
    dataset_version_id: Mapped[str | None] = mapped_column(col.ID)
    dataset_ref: Mapped[str | None] = mapped_column(String(300))
    task: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(250))
    report: Mapped[str] = mapped_column(Text)  # metrics, slices, confusion, calibration, plots
