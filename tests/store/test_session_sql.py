"""``SessionSql``: plain SQL straight on a session's driver connection, in its transaction.

It skips SQLAlchemy's statement machinery, so what that machinery did must still happen: both
parameter styles reach either driver, the statements belong to the session's transaction (seen
by its ORM reads, undone by its rollback), and a driver's error reaches the caller as the
store's own (a constraint is a ``Conflict``, an out-of-range value ``InvalidInput``), never as a
raw ``sqlite3`` or ``psycopg`` exception the server would answer with a 500."""

from __future__ import annotations

import pytest

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.schema import open_store
from opsloop.store.sql import SessionSql
from opsloop.tracking.experiments import create_experiment
from opsloop.tracking.runs import create_run
from opsloop.tracking.tables import RunTagRow

_TAG = 'INSERT INTO run_tags (run_id, "key", value) VALUES (:run_id, :key, :value)'


def test_statements_run_in_the_sessions_transaction(database_url: str) -> None:
    store = open_store(database_url)
    try:
        with store.write() as session:
            run_id = create_run(session, create_experiment(session, "e").experiment_id).info.run_id
        with store.write() as session:
            sql = SessionSql(session)
            sql.run_many(_TAG, [{"run_id": run_id, "key": "a", "value": "1"}])
            sql.run_many('INSERT INTO run_tags (run_id, "key", value) VALUES (?, ?, ?)',
                         [(run_id, "b", "2"), (run_id, "c", "50%")])  # fmt: skip
            # the ORM sees them in the same transaction
            assert session.get(RunTagRow, (run_id, "c")).value == "50%"
            found = sql.rows('SELECT "key" FROM run_tags WHERE run_id = :r ORDER BY "key"',
                             {"r": run_id})  # fmt: skip
            assert {"a", "b", "c"} <= {key for (key,) in found}
        with pytest.raises(RuntimeError), store.write() as session:
            SessionSql(session).run_many(_TAG, [{"run_id": run_id, "key": "d", "value": "4"}])
            raise RuntimeError("the block fails: its statements are rolled back")
        with store.read() as session:
            keys = {row[0] for row in SessionSql(session).rows(
                'SELECT "key" FROM run_tags WHERE run_id = :r', {"r": run_id})}  # fmt: skip
        assert {"a", "b", "c"} <= keys and "d" not in keys
    finally:
        store.dispose()


def test_a_drivers_error_is_the_stores_own(database_url: str) -> None:
    store = open_store(database_url)
    try:
        with store.write() as session:
            run_id = create_run(session, create_experiment(session, "e").experiment_id).info.run_id
        row = {"run_id": run_id, "key": "a", "value": "1"}
        with store.write() as session:
            SessionSql(session).run_many(_TAG, [row])
        with pytest.raises(Conflict, match="conflicts with stored data"), store.write() as s:
            SessionSql(s).run_many(_TAG, [row])  # the same (run, key) again
        with pytest.raises(Conflict), store.write() as session:  # a foreign key, one row
            SessionSql(session).rows(
                'INSERT INTO run_tags (run_id, "key", value) VALUES (:r, :k, :v)',
                {"r": "0" * 32, "k": "a", "v": "1"},
            )
        with pytest.raises(InvalidInput, match=r"out of range|cannot store"), store.write() as s:
            SessionSql(s).run_many(
                'INSERT INTO metrics (run_id, "key", step, timestamp, value)'
                " VALUES (?, ?, ?, ?, ?)",
                [(run_id, "m", 2**70, 0, 1.0)],
            )
        with store.read() as session:  # the store still answers after each
            assert SessionSql(session).rows("SELECT COUNT(*) FROM run_tags WHERE \"key\" = 'a'")
    finally:
        store.dispose()
