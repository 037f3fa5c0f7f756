"""Reads on a bare ``sqlite3`` connection to the embedded store, for every domain's quick reads.

A command such as ``opsloop experiments list`` or ``models show churn@3`` is a whole process for
a few queries, and importing SQLAlchemy with its ORM and dialects costs more than half of it
(0.3 s of ~0.6 s on a 2-core box). So, on the embedded store (a SQLite file at this version's
schema), a domain answers its everyday reads in plain SQL on a :class:`QuickConnection` and
opens the ORM store only when something else is asked. A server, PostgreSQL, a missing file or
another schema revision: :meth:`QuickConnection.open` returns None and every call goes the ORM
way (opening the store creates or migrates it). The domains' queries live with them
(``tracking/quick_reads.py``, ``registry/quick_reads.py``); what they share is here: opening at
the right schema, one snapshot per read, a lock, a fresh connection after a fork, the one row
a name selects (or the ORM's ``NotFound``), and a row by column name for the ORM's conversions.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from typing import Self

from opsloop.errors import NotFound
from opsloop.store.sql import connect_sqlite
from opsloop.store.sql import sqlite_path

__all__ = ["QUICK_PAGE_LIMIT", "QuickConnection", "named"]

# Pages up to this size are read quickly; a larger one goes the ORM way, which also owns the
# message for a size out of range.
QUICK_PAGE_LIMIT = 10_000


class QuickConnection:
    """A bare connection to the store's SQLite file, set up as the engine's are; each read in
    one snapshot (``BEGIN`` ... ``COMMIT``; WAL readers never wait).

    Thread-safe (one read at a time on the connection); a forked child opens its own."""

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self._connection, self._path, self._pid = connection, path, os.getpid()
        self._lock = threading.Lock()

    @classmethod
    def open(cls, database_url: str) -> Self | None:
        """A connection to the store's SQLite file, or None when it cannot answer as the ORM
        would (not a SQLite file, no file yet, another schema revision)."""
        from opsloop.store.migrate import SCHEMA_HEAD

        path = sqlite_path(database_url)
        if path is None or not Path(path).is_file():
            return None
        try:
            connection = connect_sqlite(path)
        except sqlite3.Error:
            return None
        try:
            revision = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        except sqlite3.Error:
            revision = []
        if revision != [(SCHEMA_HEAD,)]:
            connection.close()
            return None
        return cls(connection, path)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read: every :meth:`rows` inside the block sees the same state of the store."""
        with self._lock:
            if self._pid != os.getpid():  # SQLite connections must not cross a fork
                self._connection, self._pid = connect_sqlite(self._path), os.getpid()
            self._connection.execute("BEGIN")
            try:
                yield
            finally:
                self._connection.execute("COMMIT")

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """The rows of a query with ``:name`` parameters (inside :meth:`snapshot`)."""
        return self._connection.execute(sql, params or {}).fetchall()

    def first(self, sql: str, params: dict[str, Any], missing: str) -> tuple[Any, ...]:
        """The first row of a query (inside :meth:`snapshot`).

        Raises:
            NotFound: with the message ``missing`` (the ORM path's own) when there is none.
        """
        found = self.rows(sql, params)
        if not found:
            raise NotFound(missing)
        return found[0]

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def named(columns: str | Sequence[str], row: Sequence[Any]) -> SimpleNamespace:
    """A row with its values by column name, as an ORM row has them, so that the ORM path's
    own conversions (``*_from_row``) read it. ``columns``: the names, or the ``SELECT`` list
    (``"id, name"``) the row was read with."""
    names = columns.replace(" ", "").split(",") if isinstance(columns, str) else columns
    return SimpleNamespace(**dict(zip(names, row, strict=True)))
