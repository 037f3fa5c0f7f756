"""Building blocks the revisions in ``versions/`` share: columns, column sets, table shapes, and
the index and column steps they repeat.

Migration-only, and frozen. These functions are part of history: every database replays them
on upgrade and downgrade, so what one emits (a type, a length, a name, the order of columns and
constraints) must never change. Never change a function here; when a new revision needs
something else, add a new function. For the same reason nothing here imports the live table
definitions (``opsloop.store.columns``, a domain's ``tables``): those move with the schema, and
history must not.

Constraint names are written out (``op.f``) as the revisions always wrote them: ``pk_<table>``,
``uq_<table>_<columns>``, ``fk_<table>_<column>_<parent>``. Indexes go through
``batch_alter_table``, as Alembic's autogenerate wrote them for SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

# Columns: one line a column in a revision, the type in the function's name.


def string(name: str, length: int, *, nullable: bool = False) -> sa.Column[Any]:
    """A ``VARCHAR(length)`` column, NOT NULL unless ``nullable``."""
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def text(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    """A ``TEXT`` column, NOT NULL unless ``nullable``."""
    return sa.Column(name, sa.Text(), nullable=nullable)


def integer(name: str, *, nullable: bool = False, **options: Any) -> sa.Column[Any]:
    """An ``INTEGER`` column, NOT NULL unless ``nullable``; ``options`` go to ``sa.Column``."""
    return sa.Column(name, sa.Integer(), nullable=nullable, **options)


def big_integer(name: str, *, nullable: bool = False, **options: Any) -> sa.Column[Any]:
    """A ``BIGINT`` column (times in ms, sizes, counts), NOT NULL unless ``nullable``;
    ``options`` go to ``sa.Column``."""
    return sa.Column(name, sa.BigInteger(), nullable=nullable, **options)


def floating(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    """A ``FLOAT`` column, NOT NULL unless ``nullable``."""
    return sa.Column(name, sa.Float(), nullable=nullable)


def double(name: str) -> sa.Column[Any]:
    """A NOT NULL ``DOUBLE`` column (metric values)."""
    return sa.Column(name, sa.Double(), nullable=False)


def boolean(name: str) -> sa.Column[Any]:
    """A NOT NULL ``BOOLEAN`` column."""
    return sa.Column(name, sa.Boolean(), nullable=False)


def binary(name: str) -> sa.Column[Any]:
    """A NOT NULL ``BLOB`` / ``BYTEA`` column (packed manifests)."""
    return sa.Column(name, sa.LargeBinary(), nullable=False)


def id_column() -> sa.Column[Any]:
    """The 32-hex ``id`` most tables are keyed by."""
    return string("id", 32)


def serial_id() -> sa.Column[Any]:
    """An autoincrementing ``id``: BIGINT, INTEGER on SQLite (only that aliases the rowid)."""
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )


def created() -> list[sa.Column[Any]]:
    """``created_at`` (ms) and ``created_by``."""
    return [big_integer("created_at"), string("created_by", 250)]


def timestamps() -> list[sa.Column[Any]]:
    """``created_at`` and ``updated_at`` (ms)."""
    return [big_integer("created_at"), big_integer("updated_at")]


def created_and_updated() -> list[sa.Column[Any]]:
    """``created_at``, ``updated_at`` (ms) and ``created_by``."""
    return [*timestamps(), string("created_by", 250)]


def acted(action_length: int) -> list[sa.Column[Any]]:
    """A history entry's ``at`` (ms), ``actor`` and ``action`` (``action_length`` characters)."""
    return [big_integer("at"), string("actor", 250), string("action", action_length)]


# Constraints, named as the revisions always named them.


def primary_key(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    """``pk_<table>`` over ``columns``."""
    return sa.PrimaryKeyConstraint(*columns, name=op.f(f"pk_{table}"))


def unique(table: str, *columns: str) -> sa.UniqueConstraint:
    """``uq_<table>_<columns>`` over ``columns``."""
    return sa.UniqueConstraint(*columns, name=op.f(f"uq_{table}_{'_'.join(columns)}"))


def cascade(table: str, column: str, parent: str) -> sa.ForeignKeyConstraint:
    """``column`` references ``<parent>.id``; a row goes when its parent row goes."""
    return sa.ForeignKeyConstraint(
        [column], [f"{parent}.id"], name=op.f(f"fk_{table}_{column}_{parent}"), ondelete="CASCADE"
    )


# Tables: the shapes the schema repeats. Each returns the table, for ``op.bulk_insert``.


def create_named_table(table: str, *columns: sa.Column[Any]) -> sa.Table:
    """A table of named things: a 32-hex ``id``, a unique ``name`` (250), then ``columns``."""
    return op.create_table(
        table,
        id_column(),
        string("name", 250),
        *columns,
        primary_key(table, "id"),
        unique(table, "name"),
    )


def create_owned_table(
    table: str,
    owner: str,
    parent: str,
    *columns: sa.Column[Any],
    unique_on: Iterable[Sequence[str]] = (),
    **options: Any,
) -> sa.Table:
    """A table whose rows belong to a row of ``parent`` and go with it: a 32-hex ``id``, the
    ``owner`` column (the parent's id), then ``columns``; ``unique_on`` lists the column groups
    that are unique; ``options`` go to ``op.create_table``."""
    return op.create_table(
        table,
        id_column(),
        string(owner, 32),
        *columns,
        cascade(table, owner, parent),
        primary_key(table, "id"),
        *(unique(table, *group) for group in unique_on),
        **options,
    )


def create_key_value_table(table: str, owner: str, parent: str) -> sa.Table:
    """Tags or params of a ``parent`` row: ``(owner, key) -> value``, gone with the parent."""
    return op.create_table(
        table,
        string(owner, 32),
        string("key", 250),
        text("value"),
        cascade(table, owner, parent),
        primary_key(table, owner, "key"),
    )


def create_alias_table(table: str, owner: str, parent: str, label: str = "alias") -> sa.Table:
    """Movable names of a ``parent``'s versions: ``(owner, label) -> number`` (64-character
    labels), gone with the parent."""
    return op.create_table(
        table,
        string(owner, 32),
        string(label, 64),
        integer("number"),
        cascade(table, owner, parent),
        primary_key(table, owner, label),
    )


def drop_tables(*tables: str) -> None:
    """Drop ``tables`` in the order given (dependents first)."""
    for table in tables:
        op.drop_table(table)


def drop_indexed_table(table: str, *indexes: str) -> None:
    """Drop the ``indexes`` of ``table`` (in order, as the revisions always did), then the table."""
    drop_indexes(table, *indexes)
    op.drop_table(table)


# Steps on an existing table, through ``batch_alter_table`` (SQLite alters by table copies).


def create_indexes(table: str, indexes: Mapping[str, Sequence[str]]) -> None:
    """Create the non-unique ``indexes`` (name -> columns) on ``table``, in order."""
    with op.batch_alter_table(table, schema=None) as batch_op:
        for name, columns in indexes.items():
            batch_op.create_index(name, list(columns), unique=False)


def drop_indexes(table: str, *names: str) -> None:
    """Drop the indexes ``names`` of ``table``, in order."""
    with op.batch_alter_table(table, schema=None) as batch_op:
        for name in names:
            batch_op.drop_index(name)


def add_columns(table: str, *columns: sa.Column[Any]) -> None:
    """Add ``columns`` to ``table``, in order."""
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.add_column(column)


def drop_columns(table: str, *names: str) -> None:
    """Drop the columns ``names`` of ``table``, in order."""
    with op.batch_alter_table(table, schema=None) as batch_op:
        for name in names:
            batch_op.drop_column(name)
