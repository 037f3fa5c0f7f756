"""Migrations on SQLite and PostgreSQL: head matches the models, and downgrade undoes it."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy import inspect

from opsloop.errors import InvalidInput
from opsloop.schema import metadata
from opsloop.schema import open_store
from opsloop.store.database import Store
from opsloop.store.database import normalize_database_url
from opsloop.store.migrate import _MIGRATIONS
from opsloop.store.migrate import SCHEMA_HEAD
from opsloop.store.migrate import current_revision
from opsloop.store.migrate import downgrade
from opsloop.store.migrate import upgrade


def test_schema_head_constant_is_the_newest_revision() -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_HEAD


def test_upgrade_matches_models_and_downgrade_empties(database_url: str) -> None:
    store = Store(database_url)
    upgrade(store.engine)  # replay every revision, as an existing install would
    with store.engine.connect() as conn:
        assert current_revision(conn) == SCHEMA_HEAD
        diff = compare_metadata(MigrationContext.configure(conn), metadata())
    assert diff == []
    open_store(database_url)  # a second open is a no-op
    downgrade(store.engine, "base")
    tables = set(inspect(store.engine).get_table_names()) - {"alembic_version"}
    assert tables == set()
    store.dispose()


def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_bad_database_url_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        open_store("not a url")


def test_bare_postgres_url_uses_psycopg3() -> None:
    assert normalize_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    create_engine(normalize_database_url("postgresql://u@h/db"))  # driver importable


def test_fresh_database_fast_path_equals_the_migrations(database_url: str) -> None:
    store = open_store(database_url)  # empty database: create_all + version row
    with store.engine.connect() as conn:
        assert current_revision(conn) == SCHEMA_HEAD
        assert compare_metadata(MigrationContext.configure(conn), metadata()) == []
    downgrade(store.engine, "base")  # and Alembic can take it from there
    upgrade(store.engine)
    store.dispose()


def _latest_metrics_ddl(store: Store) -> str:
    with store.engine.connect() as conn:
        return str(
            conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'latest_metrics'"
            ).scalar()
        )


def test_latest_metrics_is_clustered_on_both_paths_and_keeps_rows(sqlite_url: str) -> None:
    replayed = Store(sqlite_url)
    upgrade(replayed.engine, "0003_data_versions")
    with replayed.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO experiments VALUES ('e', 'e', NULL, 'active', 0, 0)")
        conn.exec_driver_sql(
            "INSERT INTO runs VALUES ('r', 'e', 'r', 'RUNNING', 0, NULL, NULL, 'u', NULL, 'active')"
        )
        conn.exec_driver_sql("INSERT INTO latest_metrics VALUES ('r', 'acc', 0.5, 3, 7)")
    upgrade(replayed.engine)
    assert "WITHOUT ROWID" in _latest_metrics_ddl(replayed)
    with replayed.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT * FROM latest_metrics").all()
    assert [tuple(r) for r in rows] == [("r", "acc", 0.5, 3, 7)]
    replayed.dispose()

    fresh = open_store(sqlite_url.replace(".db", "-fresh.db"))
    assert "WITHOUT ROWID" in _latest_metrics_ddl(fresh)
    fresh.dispose()
