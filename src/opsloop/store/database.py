"""The metadata store: one SQLAlchemy engine, transactions, and error translation.

SQLite is the embedded default. It runs in WAL mode so readers never wait for the writer, and
every write transaction starts with ``BEGIN IMMEDIATE``: a writer takes the write lock up front
and waits for it (busy timeout) instead of failing with "database is locked" when it would have
to upgrade a read lock that another process holds. That is what lets two processes log to one
SQLite file at once. PostgreSQL needs none of this.

Contract: ``Store`` is thread-safe; sessions are not (one per thread / request). Services take a
session and never commit; whoever opened the transaction (the route, the local client) commits.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import MetaData
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import exc
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import OpsloopError
from opsloop.errors import StoreError
from opsloop.store.sql import SQLITE_BUSY_TIMEOUT_S
from opsloop.store.sql import DriverSql
from opsloop.store.sql import driver_error
from opsloop.store.sql import set_up_sqlite

__all__ = [
    "PlainCommitHook", "Store", "dialect_insert", "normalize_database_url", "on_plain_commit",
]  # fmt: skip

_READ_ONLY = "opsloop_read_only"
# Run by every plain write transaction (:meth:`Store.write_plain`) just before its commit, in
# it, as an ORM session's ``before_commit`` listeners are by its commit; what a hook returns is
# called afterwards with whether the transaction committed. The audit log registers one
# (``governance.audit_hook``): a request's event commits with its write, on either path.
PlainCommitHook = Callable[["Store", DriverSql], Callable[[bool], None] | None]
_PLAIN_COMMIT_HOOKS: list[PlainCommitHook] = []


def on_plain_commit(hook: PlainCommitHook) -> None:
    """Run ``hook`` in every plain write transaction of every store before it commits (a hook
    registered twice runs once)."""
    if hook not in _PLAIN_COMMIT_HOOKS:
        _PLAIN_COMMIT_HOOKS.append(hook)


def normalize_database_url(url: str) -> str:
    """Pick the driver opsloop ships with for a bare ``postgresql://`` URL (psycopg 3)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        set_up_sqlite(dbapi_conn, synchronous)  # and BEGIN is ours to emit, below

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        # Straight to the driver: this runs for every transaction, and a statement through
        # SQLAlchemy's execution machinery costs more than SQLite's BEGIN itself.
        conn.connection.driver_connection.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")


class Store:
    """A metadata database opened and migrated to the schema this opsloop version needs.

    Args:
        url: SQLAlchemy URL (``sqlite:///path/opsloop.db``, ``postgresql://...``).
        schema: Bring the database up to the schema this returns on open (every domain's
            tables; :func:`opsloop.schema.open_store` passes it; called only for an empty
            database). Without it the database is used as it is.
        sqlite_synchronous: How hard a SQLite commit waits for the disk
            (:data:`opsloop.config.SQLITE_SYNC_LEVELS`); other databases ignore it.

    Example:
        >>> store = Store("sqlite:///:memory:")
        >>> with store.write() as session:
        ...     ...
    """

    def __init__(
        self,
        url: str,
        *,
        schema: Callable[[], MetaData] | None = None,
        sqlite_synchronous: str = "normal",
    ) -> None:
        self.url = normalize_database_url(url)
        try:
            parsed = make_url(self.url)
        except exc.ArgumentError as err:
            raise InvalidInput(f"not a database URL: {url!r}") from err
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"pool_pre_ping": not self.is_sqlite}
        if self.is_sqlite:
            database = parsed.database or ""
            if database and database != ":memory:":
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {
                "timeout": SQLITE_BUSY_TIMEOUT_S,
                "check_same_thread": False,
            }
        self.engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine, sqlite_synchronous)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**{_READ_ONLY: True}), expire_on_commit=False
        )
        if schema is not None:
            from opsloop.store.migrate import ensure_schema

            with _translate_errors():
                ensure_schema(self.engine, schema)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session in a write transaction, committed when the block exits without error."""
        with _translate_errors(), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def write_plain(self) -> Iterator[DriverSql]:
        """A write transaction without the ORM: plain SQL on a pooled driver connection,
        committed when the block exits without error, its errors the store's (as
        :meth:`write`'s), the hooks of :func:`on_plain_commit` run in it.

        For a hot write whose statements are plain SQL already (MLflow's client sends a request
        per metric point): a ``Session``'s set-up, transaction and commit events cost about as
        much as the request's statements on SQLite together with their commit."""
        hooks = _PLAIN_COMMIT_HOOKS
        with _translate_errors():
            pooled = self.engine.raw_connection()  # the engine's connect set-up done (pragmas)
            sql = DriverSql(pooled.driver_connection, self.engine.dialect)
            finish: list[Callable[[bool], None]] = []
            try:
                with driver_error(sql):
                    if self.is_sqlite:  # as the engine's ``begin`` listener does
                        sql.driver.execute("BEGIN IMMEDIATE")
                try:
                    yield sql
                    finish.extend(done for hook in hooks if (done := hook(self, sql)))
                    with driver_error(sql):
                        sql.driver.commit()
                except BaseException:
                    with driver_error(sql):
                        sql.driver.rollback()
                    for done in finish:
                        done(False)
                    raise
                for done in finish:
                    done(True)
            finally:
                pooled.close()  # back to the pool (which rolls back whatever is still open)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads: on SQLite it never takes the write lock."""
        with _translate_errors(), self._read_sessions() as session, session.begin():
            yield session

    def ping(self) -> None:
        """Raise ``StoreError`` unless the database answers."""
        with self.read() as session:
            session.execute(text("SELECT 1"))

    def dispose(self) -> None:
        """Close every pooled connection (tests, forked workers)."""
        self.engine.dispose()


@contextmanager
def _translate_errors() -> Iterator[None]:
    """Map SQLAlchemy's errors to opsloop's, once, at the store boundary. A value the
    database cannot hold (an integer beyond 64 bits: ``OverflowError`` from SQLite's driver,
    ``DataError`` from PostgreSQL) is the caller's ``InvalidInput``, not a store failure to
    retry; the edges check ranges first (:mod:`opsloop.kernel.bounds`), this is the backstop."""
    try:
        yield
    except OpsloopError:
        raise
    except exc.IntegrityError as err:
        raise Conflict(f"the write conflicts with stored data: {err.orig}") from err
    except exc.DataError as err:
        raise InvalidInput(f"the database cannot store a value given: {err.orig}") from err
    except OverflowError as err:
        raise InvalidInput(
            f"a number given is out of range: integers are stored in 64 bits ({err})"
        ) from err
    except exc.SQLAlchemyError as err:
        raise StoreError(f"metadata store error: {err.__class__.__name__}: {err}") from err


def dialect_insert(session: Session, table: Any) -> Any:
    """An ``INSERT`` that knows ``ON CONFLICT`` for the session's database (SQLite or Postgres)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)
