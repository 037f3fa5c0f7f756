"""Workspaces (issue 23): every object belongs to one, each in a store of its own; names are
unique per workspace; roles are per workspace and checked on every request; a typo is an error,
never a new empty workspace. Locally and on a real server in ``users`` mode, SQLite and
PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import opsloop
from opsloop.config import load_settings
from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import PermissionDenied
from opsloop.store.workspaces import workspace_database_url

OPSLOOP = str(Path(sys.executable).parent / "opsloop")


def _client(database_url: str, blobs: Path, workspace: str = "default") -> opsloop.Client:
    settings = load_settings(database_url=database_url, blob_url=str(blobs), workspace=workspace)
    return opsloop.Client(settings=settings)


def test_each_workspace_keeps_its_own_objects(database_url: str, tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    with _client(database_url, blobs) as root:
        root.create_experiment("churn")
        made = root.governance.create_workspace("team-a")
        assert made.name == "team-a" and made.created_by
        assert [w.name for w in root.governance.list_workspaces()] == ["default", "team-a"]
        with pytest.raises(Conflict):
            root.governance.create_workspace("team-a")
    with _client(database_url, blobs, "team-a") as team:
        assert "churn" not in _names(team)
        churn = team.create_experiment("churn").experiment_id  # the same name, elsewhere
        run = team.create_run(churn)
        team.log_metric(run.info.run_id, "auc", 0.9)
        team.end_run(run.info.run_id)
        assert [w.name for w in team.governance.list_workspaces()] == ["default", "team-a"]
    with _client(database_url, blobs) as root:
        with pytest.raises(NotFound):
            root.get_run(run.info.run_id)  # an id from another workspace is not here
        assert root.get_experiment_by_name("churn").experiment_id != churn


def test_a_workspace_must_exist_and_be_well_named(database_url: str, tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    with _client(database_url, blobs) as root:
        root.governance.create_workspace("team-a")
        with pytest.raises(InvalidInput, match="lower-case"):
            root.governance.create_workspace("Team A")
    with pytest.raises(NotFound, match="did you mean 'team-a'"):
        _client(database_url, blobs, "team-b")
    with pytest.raises(InvalidInput, match="lower-case"):
        load_settings(database_url=database_url, workspace="../etc")
    with pytest.raises(InvalidInput, match="in-memory"):
        workspace_database_url("sqlite:///:memory:", "team-a")


def test_where_a_workspace_lives() -> None:
    assert workspace_database_url("sqlite:////d/opsloop.db", "team-a") == (
        "sqlite:////d/opsloop.team-a.db"
    )
    assert workspace_database_url("sqlite:////d/opsloop.db", "default") == "sqlite:////d/opsloop.db"
    pg = workspace_database_url("postgresql+psycopg://u@h:5432/db?options=-cstatement_timeout%3D0",
                                "team-a")  # fmt: skip
    assert pg.startswith("postgresql+psycopg://u@h:5432/db?options=")
    assert "search_path%3Dopsloop_ws_team_a" in pg and "statement_timeout" in pg
    mine = workspace_database_url("postgresql+psycopg://u@h/db?options=-csearch_path%3Dmine", "x")
    assert mine.endswith("options=-csearch_path%3Dmine_ws_x")  # beside the root's own schema


def test_the_cli_works_in_a_workspace(sqlite_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "OPSLOOP_DATABASE_URL": sqlite_url,
           "OPSLOOP_BLOB_URL": str(tmp_path / "blobs"), "COLUMNS": "200"}  # fmt: skip
    env.pop("OPSLOOP_WORKSPACE", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([OPSLOOP, *args], capture_output=True, text=True, env=env,
                              timeout=120)  # fmt: skip

    assert run("workspaces", "create", "team-a").returncode == 0
    assert run("--workspace", "team-a", "experiments", "create", "churn").returncode == 0
    listed = run("--workspace", "team-a", "experiments", "list", "--json")
    assert '"churn"' in listed.stdout
    assert '"churn"' not in run("experiments", "list", "--json").stdout
    typo = run("--workspace", "team-b", "experiments", "list")
    assert typo.returncode != 0 and "did you mean 'team-a'" in typo.stderr
    assert "Traceback" not in typo.stderr and len(typo.stderr.strip().splitlines()) == 1
    bad = run("--workspace", "Team A", "runs", "list")
    assert bad.returncode != 0 and "lower-case" in bad.stderr and "Traceback" not in bad.stderr
    shown = run("workspaces", "list", "--json")
    assert '"team-a"' in shown.stdout and '"default"' in shown.stdout


def _names(client: opsloop.Client) -> list[str]:
    return [e.name for e in client.list_experiments().items]


def _in(users_server: Any, user: str, workspace: str) -> opsloop.Client:
    settings = load_settings(server_url=users_server.url, token=users_server.keys[user],
                             workspace=workspace)  # fmt: skip
    return opsloop.Client(settings=settings)


def test_roles_hold_per_workspace_on_a_server(users_server: Any) -> None:
    with _in(users_server, "root", "default") as root:
        root.governance.create_workspace("team-a")
        root.governance.set_role("eddie", "editor", workspace="team-a")
        root.governance.set_role("vic", "viewer", workspace="team-a")
        with pytest.raises(NotFound):
            root.governance.set_role("vic", "viewer", workspace="team-x")
    with _in(users_server, "eddie", "team-a") as eddie:
        eddie.create_experiment("churn")
        assert "churn" in _names(eddie)
    with _in(users_server, "eddie", "default") as eddie:
        assert "churn" not in _names(eddie)
        eddie.create_experiment("churn")  # names are unique per workspace
    with _in(users_server, "vic", "team-a") as vic:
        assert "churn" in _names(vic)
        with pytest.raises(PermissionDenied, match="in workspace 'team-a'"):
            vic.create_experiment("mine")
    mona = _in(users_server, "mona", "team-a")  # a maintainer at home, nobody there
    with mona, pytest.raises(PermissionDenied, match="no role in workspace 'team-a'"):
        _names(mona)
    http = users_server.http("eddie")
    missing = http.get("/api/experiments", headers={"X-Opsloop-Workspace": "team-b"})
    assert missing.status_code == 404 and "did you mean 'team-a'" in missing.text
    malformed = http.get("/api/experiments", headers={"X-Opsloop-Workspace": "Team A"})
    assert malformed.status_code == 400, malformed.text
    # users, keys and the list of workspaces are global: a workspace header changes nothing
    admin = users_server.http("root")
    users = admin.get("/api/users", headers={"X-Opsloop-Workspace": "team-a"})
    assert users.status_code == 200 and {u["name"] for u in users.json()} >= {"eddie", "vic"}
    listed = http.get("/api/workspaces").json()
    assert [w["name"] for w in listed] == ["default", "team-a"]
    refused = http.post("/api/workspaces", json={"name": "team-c"})
    assert refused.status_code == 403, refused.text


def test_each_workspace_has_its_own_audit_chain(users_server: Any) -> None:
    with _in(users_server, "root", "default") as root:
        root.governance.create_workspace("team-a")  # root administers what it makes
        root.governance.set_role("eddie", "editor", workspace="team-a")
    with _in(users_server, "eddie", "team-a") as eddie:
        eddie.create_experiment("audited")
    admin = users_server.http("root")
    there = admin.get("/api/audit", headers={"X-Opsloop-Workspace": "team-a"}).json()
    actions = [(e["actor"], e["action"], e["workspace"]) for e in there["items"]]
    assert ("eddie", "POST /api/experiments", "team-a") in actions
    home = admin.get("/api/audit").json()
    assert not any(e["action"] == "POST /api/experiments" for e in home["items"])
    verified = admin.get("/api/audit/verify", headers={"X-Opsloop-Workspace": "team-a"})
    assert verified.status_code == 200 and verified.json()["ok"], verified.text


def test_a_workspace_runs_its_own_background_work(users_server: Any, monkeypatch: Any) -> None:
    """A trigger fired in a workspace is run by that workspace's scheduler, in its store."""
    with _in(users_server, "root", "default") as root:
        root.governance.create_workspace("team-a")
        root.governance.set_role("mona", "maintainer", workspace="team-a")
    with _in(users_server, "mona", "team-a") as mona:
        mona.triggers.create("nightly", "tests.pipelines.example:training", "webhook",
                             params={"rows": 60})  # fmt: skip
        mona.triggers.fire("nightly", key="one")
        deadline = time.monotonic() + 120
        while True:
            (firing,) = mona.triggers.firings("nightly")
            if firing.status not in ("pending", "running") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert firing.status == "succeeded", firing.message
        assert mona.get_run(firing.run_id).info.user_id == "mona"
    with _in(users_server, "mona", "default") as home, pytest.raises(NotFound):
        home.triggers.get("nightly")


def test_an_mlflow_client_works_in_a_workspace_named_in_its_uri(
    users_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mlflow client sends no workspace header: its tracking URI names the workspace."""
    mlflow = pytest.importorskip("mlflow")
    from tests.tracking.mlflow_fixtures import use_mlflow

    with _in(users_server, "root", "default") as root:
        root.governance.create_workspace("team-a")
        root.governance.set_role("eddie", "editor", workspace="team-a")
    use_mlflow(monkeypatch, f"{users_server.url}/w/team-a", token=users_server.keys["eddie"])
    mlflow.set_experiment("from-mlflow")
    with mlflow.start_run():
        mlflow.log_metric("auc", 0.75)
    with _in(users_server, "eddie", "team-a") as eddie:
        assert "from-mlflow" in _names(eddie)
    with _in(users_server, "eddie", "default") as eddie:
        assert "from-mlflow" not in _names(eddie)
    use_mlflow(monkeypatch, f"{users_server.url}/w/team-b", token=users_server.keys["eddie"])
    with pytest.raises(mlflow.exceptions.MlflowException, match="team-a"):
        mlflow.set_experiment("nowhere")  # a typo in the URI: the close workspace is named


def test_the_ui_remembers_the_workspace_a_link_chose(users_server: Any) -> None:
    with _in(users_server, "root", "default") as root:
        root.governance.create_workspace("team-a")
        root.governance.set_role("vic", "viewer", workspace="team-a")
    with _in(users_server, "root", "team-a") as admin:
        admin.create_experiment("kept")
    vic = users_server.http("vic")
    chosen = vic.get("/experiments", params={"workspace": "team-a"})
    assert chosen.status_code == 200 and 'value="team-a" selected' in chosen.text
    assert "opsloop_workspace=team-a" in chosen.headers.get("set-cookie", "")
    later = vic.get("/experiments")  # httpx keeps the cookie, as a browser would
    assert later.status_code == 200 and "kept" in later.text
    back = vic.get("/experiments", params={"workspace": "default"})
    assert back.status_code == 200 and "kept" not in back.text
