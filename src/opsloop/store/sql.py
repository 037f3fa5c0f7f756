"""Plain SQL over either a SQLAlchemy session or the standard library's ``sqlite3``.

Importing SQLAlchemy (with its ORM and dialects) takes about a quarter of a second, more than a
fully cached pipeline run does in all. The few statements such a run needs (read the cache
index, write the runs whole) are therefore written once, as SQL text that SQLite and
PostgreSQL both take, with ``:name`` parameters, and run through a :class:`Sql`: over the
ORM's session when one is open (the same transaction as the rest of the write), or over a bare
``sqlite3`` connection in a process that never imports SQLAlchemy
(:func:`sqlite_transaction`).

Both go straight to the driver's ``execute`` / ``executemany``: SQLAlchemy's per-row
parameter processing costs more than these inserts themselves.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any
from typing import Protocol

from opsloop.config import SQLITE_SYNC_LEVELS

__all__ = [
    "DriverSql", "SessionSql", "Sql", "SqliteSql", "connect_sqlite", "driver_error", "in_list",
    "set_up_sqlite", "sqlite_path", "sqlite_transaction",
]  # fmt: skip

SQLITE_BUSY_TIMEOUT_S = 60
_NAMED = re.compile(r"(?<![:\w]):(\w+)")


class Sql(Protocol):
    """Runs SQL text in an open transaction, with ``:name`` parameters (mappings) or ``?``
    ones (tuples: cheaper for many rows)."""

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """The rows a query returns."""
        ...

    def run_many(
        self, sql: str, rows: Sequence[Mapping[str, Any]] | Sequence[tuple[Any, ...]]
    ) -> None:
        """The statement once per parameter set (nothing for none)."""
        ...


class SqliteSql:
    """Over a ``sqlite3`` connection (it takes ``:name`` parameters as they are)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.connection.execute(sql, params or {}).fetchall()

    def run_many(
        self, sql: str, rows: Sequence[Mapping[str, Any]] | Sequence[tuple[Any, ...]]
    ) -> None:
        if rows:
            self.connection.executemany(sql, rows)


class DriverSql:
    """Over a SQLAlchemy connection's driver connection, in its transaction, straight to the
    driver's cursor (SQLAlchemy's ``exec_driver_sql`` costs about as much again as SQLite takes
    to run one of these statements), with ``:name`` and ``?`` rewritten to ``%(name)s`` and
    ``%s`` for drivers that want that (psycopg). A driver's error is raised as SQLAlchemy's
    wrapper of it (``IntegrityError``…), as ``exec_driver_sql`` would, so the store translates
    it once, as any other (``store.database``).

    Args:
        driver: The DBAPI connection (``sqlite3``'s, psycopg's), in a transaction.
        dialect: Its SQLAlchemy dialect (the driver module, the parameter style, the name).
    """

    def __init__(self, driver: Any, dialect: Any) -> None:
        self.driver, self.dialect = driver, dialect
        self.dbapi = dialect.loaded_dbapi
        self._pyformat = dialect.paramstyle == "pyformat"

    def _text(self, sql: str) -> str:
        if not self._pyformat:
            return sql
        return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%").replace("?", "%s"))

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        text, values = self._text(sql), dict(params or {})
        return self._on_cursor(text, values, lambda cursor: _fetched(cursor, text, values))

    def changed(self, sql: str, params: Mapping[str, Any]) -> int:
        """Run one statement; the number of rows it changed (a compare-and-set's verdict)."""
        text, values = self._text(sql), dict(params)
        return self._on_cursor(text, values, lambda cursor: cursor.execute(text, values).rowcount)

    def run_many(
        self, sql: str, rows: Sequence[Mapping[str, Any]] | Sequence[tuple[Any, ...]]
    ) -> None:
        if rows:
            text = self._text(sql)
            self._on_cursor(text, rows[0], lambda cursor: cursor.executemany(text, rows))

    def _on_cursor(self, text: str, params: Any, use: Callable[[Any], Any]) -> Any:
        """``use`` of a driver's cursor, closed after; its error raised as SQLAlchemy's. (Not a
        ``contextmanager``: a generator's set-up costs ~2 us a statement on the hot path.)"""
        cursor = self.driver.cursor()
        try:
            return use(cursor)
        except self.dbapi.Error as err:
            raise _wrapped(text, params, err, self.dbapi) from err
        finally:
            cursor.close()


def _fetched(cursor: Any, text: str, values: dict[str, Any]) -> list[tuple[Any, ...]]:
    cursor.execute(text, values)
    return [tuple(row) for row in cursor.fetchall()] if cursor.description else []


@contextmanager
def driver_error(sql: DriverSql, text: str = "", params: Any = None) -> Iterator[None]:
    """A driver's error in the block (a statement, ``BEGIN``, ``COMMIT``…) raised as
    SQLAlchemy's wrapper of it."""
    try:
        yield
    except sql.dbapi.Error as err:
        raise _wrapped(text, params, err, sql.dbapi) from err


def _wrapped(sql: str, params: Any, err: Exception, dbapi: Any) -> Exception:
    """SQLAlchemy's exception for a driver's error (``IntegrityError`` for the driver's
    ``IntegrityError``…), as its own execution would raise."""
    from sqlalchemy.exc import DBAPIError  # loaded already: a session is open

    return DBAPIError.instance(sql, params, err, dbapi.Error)


class SessionSql(DriverSql):
    """:class:`DriverSql` over a SQLAlchemy session's connection, in its transaction (begun
    here if it was not yet)."""

    def __init__(self, session: Any) -> None:
        connection = session.connection()
        super().__init__(connection.connection.driver_connection, connection.dialect)


def in_list(name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """``(:name0, :name1, ...)`` and its parameters: an ``IN`` list both drivers take."""
    params = {f"{name}{i}": value for i, value in enumerate(values)}
    return "(" + ", ".join(f":{key}" for key in params) + ")", params


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///path`` URL; None for any other database (or in-memory)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url:
        return None
    path = url[len(prefix) :]
    return path if path and path != ":memory:" else None


def set_up_sqlite(connection: sqlite3.Connection, synchronous: str = "normal") -> None:
    """How every connection to the store's SQLite file runs, the engine's and a bare one's:
    WAL (readers never wait for the writer), the sync level (``normal`` or ``full``, see
    :data:`opsloop.config.SQLITE_SYNC_LEVELS`), foreign keys, a busy timeout, and transactions
    begun by us (``BEGIN IMMEDIATE`` for writes), not by the ``sqlite3`` module."""
    if synchronous not in SQLITE_SYNC_LEVELS:
        raise ValueError(f"sqlite sync level {synchronous!r} is not one of {SQLITE_SYNC_LEVELS}")
    connection.isolation_level = None
    cursor = connection.cursor()
    for pragma in ("journal_mode=WAL", f"synchronous={synchronous.upper()}", "foreign_keys=ON",
                   f"busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}"):  # fmt: skip
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def connect_sqlite(path: str, synchronous: str = "normal") -> sqlite3.Connection:
    """A bare connection to the store's SQLite file, set up as the engine's are."""
    connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S, check_same_thread=False)
    set_up_sqlite(connection, synchronous)
    return connection


@contextmanager
def sqlite_transaction(connection: sqlite3.Connection, write: bool = False) -> Iterator[SqliteSql]:
    """A transaction, committed when the block exits without error: a write takes the write
    lock up front (``BEGIN IMMEDIATE``, as the store's writes do), a read sees one snapshot."""
    connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield SqliteSql(connection)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
