"""Schema migrations: Alembic, run in-process, only when the schema is behind.

Opening a store checks one row (``alembic_version``) against :data:`SCHEMA_HEAD` and imports
Alembic only when they differ, so a script that logs a few metrics does not pay for Alembic.
The upgrade runs inside one transaction that holds the database's write lock (``BEGIN
IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so processes that open a fresh store
at the same moment migrate it exactly once. A test keeps :data:`SCHEMA_HEAD` equal to the
newest revision in ``migrations/versions``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # SQLAlchemy is imported by whoever opens a store: SCHEMA_HEAD alone is free
    from sqlalchemy import Connection
    from sqlalchemy import Engine
    from sqlalchemy import MetaData

__all__ = ["SCHEMA_HEAD", "current_revision", "downgrade", "ensure_schema", "upgrade"]

SCHEMA_HEAD = "0023_workspaces"
_MIGRATIONS = Path(__file__).with_name("migrations")
_PG_MIGRATION_LOCK = 0x0B5100B


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from sqlalchemy import inspect
    from sqlalchemy import text

    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def ensure_schema(engine: Engine, metadata: Callable[[], MetaData]) -> None:
    """Bring the database to :data:`SCHEMA_HEAD` unless it is there already; ``metadata`` is the
    whole schema (every domain's tables, gathered by :mod:`opsloop.schema`), asked for only
    when the database is empty.

    An empty database gets the head schema in one step (``create_all`` plus the version row,
    Alembic's documented "create then stamp" recipe), which is ten times faster than replaying
    every revision; a test checks that both paths give the same schema. A database at an older
    revision is upgraded through Alembic.
    """
    from sqlalchemy import inspect
    from sqlalchemy import text

    with engine.connect() as conn:
        at = current_revision(conn)
        conn.rollback()
    if at == SCHEMA_HEAD:
        return
    if at is None:
        with engine.begin() as conn:  # BEGIN IMMEDIATE / advisory lock: one process creates
            _lock(conn)
            if current_revision(conn) is None and not inspect(conn).get_table_names():
                metadata().create_all(conn)
                conn.execute(
                    text(
                        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
                    )
                )
                conn.execute(
                    text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                    {"v": SCHEMA_HEAD},
                )
                return
    upgrade(engine)


def _lock(conn: Connection) -> None:
    from sqlalchemy import text

    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})


def _alembic_config(conn: Connection):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` under the database's write lock."""
    from alembic import command

    with engine.begin() as conn:
        _lock(conn)
        command.upgrade(_alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Revert migrations down to ``revision`` (``base`` empties the schema)."""
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), revision)
