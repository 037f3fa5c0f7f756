"""The routes' state and history tables on SQLite and PostgreSQL: the migration creates them as
the models declare them, a rollout starts when a gateway first syncs its config and ends when
the section goes, overrides are refused in states they do not apply to, and the history keeps
every change in order; and ``opsloop gateway-routes`` shows and overrides them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from typer.testing import CliRunner

import opsloop
from opsloop.app.gateway_routes_cli import routes_app
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.llm.gateway import rollout_state as state
from opsloop.llm.gateway.config import parse_config
from opsloop.llm.gateway.rollout_tables import RouteHistoryRow
from opsloop.llm.gateway.rollout_tables import RouteStateRow
from opsloop.schema import open_store
from opsloop.store.database import Store
from opsloop.store.migrate import upgrade

TARGETS = [{"name": "a", "base_url": "http://127.0.0.1:1/v1"},
           {"name": "b", "base_url": "http://127.0.0.1:1/v1", "weight": 3}]  # fmt: skip


def _route(rollout: dict[str, Any] | None) -> Any:
    route: dict[str, Any] = {"name": "r", "targets": TARGETS}
    if rollout is not None:
        route["rollout"] = rollout
    return parse_config({"routes": [route]}).routes[0]


CANARY = {"baseline": "a", "candidate": "b", "judge": {"max_error_rate": 0.1}}


def test_the_migration_creates_the_tables_the_models_declare(database_url: str) -> None:
    store = Store(database_url)
    upgrade(store.engine, "0021_gateway_routes")
    ours = MetaData()
    for table in (RouteStateRow.__table__, RouteHistoryRow.__table__):
        table.to_metadata(ours)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), ours)
    assert [d for d in diff if "gateway_route" in repr(d)] == []  # the other tables: not ours
    store.dispose()


def test_sync_override_and_history(database_url: str) -> None:
    store = open_store(database_url)
    with store.write() as session:
        state.sync_route(session, _route(CANARY), "gw", 1000)
    with store.write() as session:  # a second gateway with the same config changes nothing
        state.sync_route(session, _route(CANARY), "gw2", 2000)
    with store.write() as session:
        paused = state.override(session, "r", "pause", "alice", None, 3000)
        assert (paused.status, paused.share) == ("paused", 5)
        assert state.override(session, "r", "promote", "alice", "ship it", 3000).share == 100
        with pytest.raises(InvalidInput, match=r"cannot resume .* it is promoted"):
            state.override(session, "r", "resume", "alice", None, 3000)
    with store.write() as session:  # the section changes: a new rollout starts over
        ab = {**CANARY, "mode": "ab", "split": 50}
        state.sync_route(session, _route(ab), "gw", 4000)
    with store.write() as session:
        state.sync_route(session, _route(None), "gw", 5000)
        with pytest.raises(InvalidInput, match="has no rollout"):
            state.override(session, "r", "rollback", "alice", None, 6000)
        with pytest.raises(NotFound, match="no gateway has served a route named 'nope'"):
            state.history(session, "nope")
    with store.read() as session:
        steps = [(h.action, h.actor, h.share_after) for h in state.history(session, "r")]
        (listed,) = state.list_routes(session)
    assert steps == [("start", "gw", 5), ("pause", "alice", 5), ("promote", "alice", 100),
                     ("start", "gw", 50), ("end", "gw", None)]  # fmt: skip
    assert listed.candidate is None and listed.targets[1] == {"name": "b", "weight": 3.0}
    store.dispose()


def test_the_cli_lists_shows_history_and_overrides(sqlite_url: str, tmp_path: Any) -> None:
    store = open_store(sqlite_url)
    with store.write() as session:
        state.sync_route(session, _route(CANARY), "gw", 1000)
    client = opsloop.Client(database_url=sqlite_url, blob_url=str(tmp_path / "blobs"))
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(routes_app, list(args), obj=lambda: client)

    listed = run("list", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)[0]["share"] == 5
    assert "b 5% (canary, running)" in run("list").output
    done = run("rollout", "r", "--rollback", "--reason", "too slow")
    assert done.exit_code == 0 and "b 0% (canary, rolled_back)" in done.output
    twice = run("rollout", "r", "--rollback", "--promote")
    assert twice.exit_code != 0 and "exactly one of" in str(twice.exception)
    history = json.loads(run("history", "r", "--json").output)
    assert [(h["action"], h["reason"]) for h in history][-1] == ("rollback", "too slow")
    assert "--promote" in run("rollout", "--help").output
    client.close()
    store.dispose()
