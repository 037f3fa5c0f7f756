"""The store's shared lookups, which every domain's "get by id" and quick reads lean on: a row
by its full id or a unique prefix (``row_by_id``), and the one row a quick read selects
(``QuickConnection.first``), each answering ``NotFound`` in the words its caller gives."""

from __future__ import annotations

import pytest

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.schema import open_store
from opsloop.store.ids import row_by_id
from opsloop.store.quick_reads import QuickConnection
from opsloop.store.quick_reads import named
from opsloop.tracking.experiments import create_experiment
from opsloop.tracking.tables import ExperimentRow


def test_row_by_id_takes_a_full_id_or_a_prefix(database_url: str) -> None:
    store = open_store(database_url)
    try:
        with store.write() as session:
            experiment_id = create_experiment(session, "lookups").experiment_id
        with store.read() as session:
            assert row_by_id(session, ExperimentRow, experiment_id, "experiment").name == "lookups"
            assert row_by_id(session, ExperimentRow, experiment_id[:8], "experiment").name == (
                "lookups"
            )
            missing = "f" * 32 if not experiment_id.startswith("f") else "e" * 32
            with pytest.raises(NotFound, match=rf"^experiment '{missing}' does not exist$"):
                row_by_id(session, ExperimentRow, missing, "experiment")
            with pytest.raises(InvalidInput, match="too short"):
                row_by_id(session, ExperimentRow, experiment_id[:3], "experiment")
    finally:
        store.dispose()


def test_quick_first_row_or_the_callers_not_found(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    with store.write() as session:
        experiment_id = create_experiment(session, "quick").experiment_id
    store.dispose()
    quick = QuickConnection.open(sqlite_url)
    assert quick is not None
    sql = "SELECT id, name FROM experiments WHERE name = :name"
    with quick.snapshot():
        row = quick.first(sql, {"name": "quick"}, "no experiment named 'quick'")
        with pytest.raises(NotFound, match=r"^no experiment named 'gone'$"):
            quick.first(sql, {"name": "gone"}, "no experiment named 'gone'")
    quick.close()
    assert row == (experiment_id, "quick")
    assert vars(named("id, name", row)) == {"id": experiment_id, "name": "quick"}
    assert vars(named(("id", "name"), row)) == {"id": experiment_id, "name": "quick"}
