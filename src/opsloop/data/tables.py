"""Data versions' tables: datasets, their immutable versions, version tags and aliases.

A version's manifest (path → digest, size for every file) is stored compressed in its row, not
as ten thousand child rows: every read of a version (diff, status, checkout) wants the whole
manifest at once, and one compressed value is one read and one write. ``version_id`` is the
BLAKE3 hash of the canonical manifest, unique per dataset, which is what makes re-adding
identical bytes a no-op.
"""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from opsloop.store import columns as col
from opsloop.store.base import Base


class DatasetRow(col.Named, col.Described, col.CreatedAt, col.UpdatedAt, Base):
    __tablename__ = "datasets"


class DatasetVersionRow(col.IdKey, col.CreatedAt, col.CreatedBy, Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("dataset_id", "number"),
        UniqueConstraint("dataset_id", "version_id"),
    )

    dataset_id: Mapped[str] = col.owner_ref("datasets")
    number: Mapped[int] = mapped_column(Integer)
    version_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    file_count: Mapped[int] = mapped_column(BigInteger)
    total_bytes: Mapped[int] = mapped_column(BigInteger)
    manifest: Mapped[bytes] = mapped_column(LargeBinary)
    table_info: Mapped[str | None] = mapped_column(Text)
    validation_status: Mapped[str | None] = mapped_column(String(16))
    validation_report: Mapped[str | None] = mapped_column(Text)


class DatasetVersionTagRow(col.TagColumns, Base):
    __tablename__ = "dataset_version_tags"

    version_pk: Mapped[str] = col.owner_key("dataset_versions")


class DatasetAliasRow(col.AliasColumns, Base):
    __tablename__ = "dataset_aliases"

    dataset_id: Mapped[str] = col.owner_key("datasets")
