"""``Store.write_plain``: a write transaction without the ORM session (MLflow's hot logging
routes use it). It must keep every promise of ``Store.write``: committed when the block ends,
rolled back when it raises, its errors the store's own, its connection back in the pool; and
the hooks registered with ``on_plain_commit`` (the audit log's) run inside it before the
commit, then hear whether it committed."""

from __future__ import annotations

import pytest

from opsloop.errors import Conflict
from opsloop.store import database
from opsloop.store.database import Store
from opsloop.store.sql import DriverSql
from opsloop.store.sql import SessionSql
from opsloop.tracking.experiments import create_experiment
from opsloop.tracking.runs import create_run

_TAG = 'INSERT INTO run_tags (run_id, "key", value) VALUES (:run_id, :key, :value)'


def _run(store: Store) -> str:
    with store.write() as session:
        return create_run(session, create_experiment(session, "e").experiment_id).info.run_id


def _tags(store: Store, run_id: str) -> dict[str, str]:
    with store.read() as session:
        found = SessionSql(session).rows(
            'SELECT "key", value FROM run_tags WHERE run_id = :r', {"r": run_id}
        )
    return dict(found)


def test_commits_rolls_back_and_answers_the_stores_errors(store: Store) -> None:
    run_id = _run(store)
    with store.write_plain() as sql:
        sql.run_many(_TAG, [{"run_id": run_id, "key": "kept", "value": "1"}])
    with pytest.raises(RuntimeError), store.write_plain() as sql:
        sql.run_many(_TAG, [{"run_id": run_id, "key": "dropped", "value": "1"}])
        raise RuntimeError("the block fails")
    with pytest.raises(Conflict, match="conflicts with stored data"), store.write_plain() as sql:
        sql.run_many(_TAG, [{"run_id": run_id, "key": "also dropped", "value": "1"},
                            {"run_id": run_id, "key": "kept", "value": "2"}])  # fmt: skip
    assert _tags(store, run_id).items() >= {"kept": "1"}.items()
    assert not {"dropped", "also dropped"} & _tags(store, run_id).keys()
    for _ in range(3 * store.engine.pool.size()):  # every connection went back to the pool
        with pytest.raises(Conflict), store.write_plain() as sql:
            sql.run_many(_TAG, [{"run_id": run_id, "key": "kept", "value": "3"}])
    assert _tags(store, run_id)["kept"] == "1"


def test_hooks_write_in_the_transaction_and_hear_how_it_ended(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = _run(store)
    heard: list[bool] = []

    def hook(hooked: Store, sql: DriverSql) -> object:
        assert hooked is store
        sql.run_many('INSERT INTO run_tags (run_id, "key", value) VALUES (:r, :k, :v)'
                     ' ON CONFLICT (run_id, "key") DO UPDATE SET value = excluded.value',
                     [{"r": run_id, "k": "hooked", "v": str(len(heard))}])  # fmt: skip
        return heard.append

    monkeypatch.setattr(database, "_PLAIN_COMMIT_HOOKS", [])
    database.on_plain_commit(hook)
    database.on_plain_commit(hook)  # once is enough
    with store.write_plain() as sql:
        sql.run_many(_TAG, [{"run_id": run_id, "key": "a", "value": "1"}])
    assert heard == [True] and _tags(store, run_id)["hooked"] == "0"
    with pytest.raises(Conflict), store.write_plain() as sql:  # the block's own statement fails
        sql.run_many(_TAG, [{"run_id": run_id, "key": "a", "value": "2"}])
    assert heard == [True]  # the block failed before the hooks ran
    monkeypatch.setattr(database, "_PLAIN_COMMIT_HOOKS", [hook, lambda *_: 1 / 0])
    with pytest.raises(ZeroDivisionError), store.write_plain() as sql:
        sql.run_many(_TAG, [{"run_id": run_id, "key": "b", "value": "1"}])
    assert heard == [True, False]  # the first hook hears its write undone
    assert "b" not in _tags(store, run_id) and _tags(store, run_id)["hooked"] == "0"
