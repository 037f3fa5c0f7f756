"""The gateway inside ``opsloop server`` serves each workspace its own routes: a route belongs to
one workspace (``workspace:`` in the config, ``default`` unless named), only callers with a role
there may use it, and its calls' spans land in that workspace's store, never in another's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from opsloop.app.gateway import create_gateway_app
from opsloop.config import load_settings
from opsloop.errors import InvalidInput
from opsloop.llm.gateway.config import parse_config
from tests.conftest import LiveServer
from tests.gateway.conftest import Served
from tests.gateway.conftest import write_config
from tests.gateway.upstream_server import Upstream
from tests.governance.conftest import bootstrap

HEADER = "X-Opsloop-Workspace"


def _routes(upstream: Upstream) -> list[dict[str, Any]]:
    def target(name: str, model: str) -> dict[str, Any]:
        return {"name": name, "base_url": upstream.url("ok"), "model": model}

    return [
        {"name": "chat", "targets": [target("home", "default-model")]},
        {"name": "chat", "workspace": "team-a", "targets": [target("team", "team-a-model")]},
        {"name": "only-a", "workspace": "team-a", "targets": [target("team", "team-a-model")]},
    ]


@pytest.fixture
def server(
    upstream: Upstream, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    monkeypatch.setenv("OPSLOOP_AUTH", "users")
    monkeypatch.setenv(
        "OPSLOOP_GATEWAY_CONFIG", write_config(tmp_path, {"routes": _routes(upstream)})
    )
    blobs = str(tmp_path / "server-blobs")
    keys = bootstrap(database_url, blobs)
    with LiveServer(database_url, blobs) as live:
        yield live, keys


def _openai(live: LiveServer, key: str, workspace: str | None = None) -> openai.OpenAI:
    headers = {HEADER: workspace} if workspace else None
    return openai.OpenAI(
        base_url=f"{live.url}/v1", api_key=key, max_retries=0, default_headers=headers
    )


def _ask(client: openai.OpenAI, model: str) -> str:
    answer = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )
    return answer.model  # the upstream echoes the model it was sent: the target's


def _span_routes(store: Any, count: int) -> list[str]:
    """The ``route/target`` of the gateway spans in ``store`` (``route/-`` for a call refused
    before any target) once ``count`` are stored (they
    are written in the background), read again a moment later to catch any that should not
    be there."""
    from opsloop.llm.tracing.entities import TraceFilter
    from opsloop.llm.tracing.local import LocalTracingBackend

    backend = LocalTracingBackend(store)

    def spans() -> list[Any]:
        traces = backend.list_traces(TraceFilter(), 100, None).items
        return [s for t in traces for s in backend.get_trace(t.trace_id).spans]

    deadline = time.monotonic() + 20
    while len(spans()) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    attrs = [s.attributes for s in spans()]
    return sorted(f"{a['opsloop.gateway.route']}/{a.get('opsloop.gateway.target', '-')}"
                  for a in attrs)  # fmt: skip


def test_each_workspace_has_its_own_routes_and_traces(
    server: tuple[LiveServer, dict[str, str]],
) -> None:
    live, keys = server
    root = live.app.state.opsloop
    from opsloop import Client

    settings = load_settings(server_url=live.url, token=keys["root"])
    with Client(settings=settings) as remote:
        remote.governance.create_workspace("team-a")  # after the server started: built then
        remote.governance.set_role("vic", "viewer", workspace="team-a")
        vic_key = remote.governance.list_keys(user="vic")[0]
        remote.governance.set_key_limits(vic_key.id, rpm=3)  # one limit, across workspaces

    vic_home, vic_team = _openai(live, keys["vic"]), _openai(live, keys["vic"], "team-a")
    assert _ask(vic_home, "chat") == "default-model"
    assert _ask(vic_team, "chat") == "team-a-model"  # one name, the workspace's own route
    assert _ask(vic_team, "only-a") == "team-a-model"
    with pytest.raises(openai.RateLimitError):
        _ask(vic_home, "chat")  # the fourth call this minute, whatever the workspace
    assert [m.id for m in vic_home.models.list()] == ["chat"]
    assert sorted(m.id for m in vic_team.models.list()) == ["chat", "only-a"]

    with pytest.raises(openai.NotFoundError) as unknown:
        _ask(vic_home, "only-a")  # team-a's route is not the default workspace's
    assert unknown.value.body["code"] == "model_not_found"
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _ask(_openai(live, keys["mona"], "team-a"), "chat")  # no role in team-a
    assert "no role in workspace 'team-a'" in refused.value.body["message"]
    with pytest.raises(openai.NotFoundError) as missing:
        _ask(_openai(live, keys["vic"], "team-b"), "chat")
    assert "team-b" in missing.value.body["message"]

    team_a = root.workspaces.state("team-a").store
    assert _span_routes(team_a, 2) == ["chat/team", "only-a/team"]
    assert _span_routes(root.store, 2) == ["chat/-", "chat/home"]  # -: the call over its limit


def test_the_standalone_gateway_serves_the_routes_of_its_workspace(
    upstream: Upstream, sqlite_url: str, tmp_path: Path
) -> None:
    from opsloop import Client

    blobs = str(tmp_path / "blobs")
    keys = bootstrap(sqlite_url, blobs)
    with Client(database_url=sqlite_url, blob_url=blobs) as local:
        local.governance.create_workspace("team-a")
        local.governance.set_role("vic", "viewer", workspace="team-a")
    config = write_config(tmp_path, {"routes": _routes(upstream), "auth": "keys"})
    settings = load_settings(
        database_url=sqlite_url, blob_url=blobs, home=str(tmp_path / "home"), workspace="team-a"
    )
    with Served(create_gateway_app(config, settings)) as gateway:
        vic = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=keys["vic"], max_retries=0)
        assert sorted(m.id for m in vic.models.list()) == ["chat", "only-a"]
        assert _ask(vic, "chat") == "team-a-model"
        mona = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=keys["mona"], max_retries=0)
        with pytest.raises(openai.PermissionDeniedError, match="no role in workspace 'team-a'"):
            mona.models.list()
    with Client(settings=settings) as team:
        traces = team.traces.list().items
    assert len(traces) == 1  # stored in team-a's store when the gateway stopped


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"workspace": "Team A"}, "routes.0.workspace: workspace .Team A.: use lower-case"),
        ({"workspace": "team-a", "fallbacks": ["other"]}, "known in workspace team-a: chat"),
    ],
)
def test_a_route_names_a_well_formed_workspace_and_falls_back_within_it(
    route: dict[str, Any], message: str
) -> None:
    target = {"name": "t", "base_url": "http://127.0.0.1:9/v1"}
    routes = [{"name": "chat", "targets": [target], **route},
              {"name": "other", "targets": [target]}]  # fmt: skip
    with pytest.raises(InvalidInput, match=message):
        parse_config({"routes": routes})
    same_name = [{"name": "chat", "targets": [target]},
                 {"name": "chat", "workspace": "team-a", "targets": [target]}]  # fmt: skip
    assert parse_config({"routes": same_name}).for_workspace("team-a").routes[0].workspace == (
        "team-a"
    )
