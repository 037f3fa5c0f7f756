"""Column shapes that several domains' tables repeat, declared once.

Most domains keep a named thing (an id, a unique name, a description), its stamps (when made,
when last changed, by whom), tags (``key → value`` rows under an owner) and aliases (``alias →
number`` rows under an owner). Each domain still writes its own table classes in its
``tables.py``; it composes these mixins instead of re-typing the columns, so the same column has
the same type everywhere. The reads every such table needs (a row by its name, an owner's
tags, an owner's newest rows) are written here once as well.

Column order is part of the schema (``create_all`` and the migrations must agree), so the
mixins keep it: the id and the name (and a description that follows them) sort first, a table's
own columns come next, then the mixins listed after them, in the order the class lists them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import MappedColumn
from sqlalchemy.orm import Session
from sqlalchemy.orm import mapped_column

from opsloop.errors import NotFound

__all__ = [
    "ID",
    "AliasColumns",
    "CreatedAt",
    "CreatedBy",
    "Described",
    "IdKey",
    "Named",
    "TagColumns",
    "UpdatedAt",
    "delete_tag_row",
    "named_row",
    "newest_rows",
    "owner_key",
    "owner_ref",
    "tags_of",
]

ID = String(32)  # every generated id (uuid hex)


def owner_key(table: str) -> MappedColumn[Any]:
    """The owner's id as part of this row's primary key; the row goes when its owner does."""
    return mapped_column(ForeignKey(f"{table}.id", ondelete="CASCADE"), primary_key=True)


def owner_ref(table: str) -> MappedColumn[Any]:
    """The owner's id, not part of the key; the row goes when its owner does."""
    return mapped_column(ForeignKey(f"{table}.id", ondelete="CASCADE"))


class IdKey:
    """A generated id as primary key, the first column."""

    id: Mapped[str] = mapped_column(ID, primary_key=True, sort_order=-2)


class Named(IdKey):
    """An id, then a name unique in its table."""

    name: Mapped[str] = mapped_column(String(250), unique=True, sort_order=-1)


def named_row(session: Session, table: Any, name: str, noun: str) -> Any:
    """The row of ``table`` (a :class:`Named` one) called ``name``; ``NotFound`` naming the
    ``noun`` when there is none."""
    row = session.scalars(select(table).where(table.name == name)).first()
    if row is None:
        raise NotFound(f"{noun} {name!r} does not exist")
    return row


class Described:
    """A free-text description, right after the name (list it after ``Named``)."""

    description: Mapped[str | None] = mapped_column(Text, sort_order=-1)


class CreatedAt:
    """When the row was made (epoch milliseconds)."""

    created_at: Mapped[int] = mapped_column(BigInteger)


class UpdatedAt:
    """When the row last changed (epoch milliseconds)."""

    updated_at: Mapped[int] = mapped_column(BigInteger)


class CreatedBy:
    """Who made the row."""

    created_by: Mapped[str] = mapped_column(String(250))


class TagColumns:
    """A tag under an owner (declare the owner's key with :func:`owner_key`)."""

    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


def tags_of(session: Session, owner: Any, owner_id: str) -> dict[str, str]:
    """The tags of ``owner_id`` in the tag table whose owner column is ``owner`` (such as
    ``RunTagRow.run_id``), as ``key → value``."""
    table = owner.class_
    return dict(session.execute(select(table.key, table.value).where(owner == owner_id)).all())


def delete_tag_row(session: Session, owner: Any, owner_id: str, key: str) -> bool:
    """Remove the tag ``key`` of ``owner_id`` (``owner`` as for :func:`tags_of`); False when
    it was not set (the caller says what has no such tag)."""
    table = owner.class_
    return bool(session.execute(delete(table).where(owner == owner_id, table.key == key)).rowcount)


def newest_rows(session: Session, owner: Any, owner_id: str, stamp: Any, limit: int) -> list[Any]:
    """The ``limit`` most recent rows of ``owner_id`` by the column ``stamp``, newest first, in
    the table whose owner column is ``owner`` (such as ``FiringRow.trigger_id``)."""
    table = owner.class_
    query = select(table).where(owner == owner_id).order_by(stamp.desc()).limit(limit)
    return list(session.scalars(query))


class AliasColumns:
    """An alias naming one of an owner's version numbers (owner declared with
    :func:`owner_key`)."""

    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[int] = mapped_column(Integer)
