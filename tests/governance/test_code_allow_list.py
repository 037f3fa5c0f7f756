"""Server-side code runs only from code the server knows (issue 23): a server in ``users`` mode
imports only modules on its allow-list (``--allow-code``), never a file a request, a trigger, a
retraining policy or a run's recorded target names; refused before anything runs (403), and
the file is never imported. On a real server, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import opsloop
from opsloop.config import load_settings
from opsloop.errors import PermissionDenied
from opsloop.kernel.code_policy import ANY_CODE
from opsloop.kernel.code_policy import CodePolicy
from opsloop.kernel.code_policy import server_code_policy
from opsloop.pipelines.loading import load_pipeline
from opsloop.workflows.scheduler import Scheduler

ALLOWED = "tests.pipelines.example:training"


@pytest.fixture
def planted(tmp_path: Path) -> tuple[str, Path]:
    """A pipeline file that leaves a mark if anything ever imports it."""
    mark = tmp_path / "imported"
    source = tmp_path / "evil.py"
    source.write_text(f"open({str(mark)!r}, 'w').write('ran')\ntraining = None\n")
    return f"{source}:training", mark


@pytest.mark.parametrize(
    ("target", "allowed"),
    [
        ("tests.pipelines.example:training", True),
        ("tests.pipelines:training", True),
        ("tests.pipelinesx.example:training", False),  # a prefix only on a dotted boundary
        ("json:loads", False),
        ("flows.py:training", False),
        ("/tmp/tests/pipelines.py:training", False),
        ("tests/pipelines/example.py:training", False),
        ("..\\evil:training", False),
    ],
)
def test_the_allow_list_admits_modules_under_its_prefixes_and_no_file(
    target: str, allowed: bool
) -> None:
    policy = CodePolicy.parse(" tests.pipelines , other.jobs,")
    assert policy.modules == ("tests.pipelines", "other.jobs")
    if allowed:
        policy.check(target)
    else:
        with pytest.raises(PermissionDenied, match="allow-list"):
            policy.check(target)
    ANY_CODE.check(target)  # a user's own process runs what its user names


def test_which_servers_restrict_code(tmp_path: Path) -> None:
    def policy(**settings: str) -> CodePolicy:
        return server_code_policy(load_settings(home=str(tmp_path), **settings))

    assert policy() == ANY_CODE and policy(token="t") == ANY_CODE
    assert policy(auth="users") == CodePolicy(())  # users mode with no list: no named code
    with pytest.raises(PermissionDenied, match=r"allow-list \(empty\)"):
        policy(auth="users").check(ALLOWED)
    assert policy(auth="users", allow_code="a.b").modules == ("a.b",)
    assert policy(token="t", allow_code="a.b").modules == ("a.b",)  # set: it restricts anyway


def test_a_refused_file_is_never_imported(planted: tuple[str, Path]) -> None:
    target, mark = planted
    with pytest.raises(PermissionDenied):
        load_pipeline(target, CodePolicy.parse("tests.pipelines"))
    assert not mark.exists()


def test_requests_naming_code_off_the_list_are_refused(
    users_server: Any, planted: tuple[str, Path]
) -> None:
    target, mark = planted
    mona = users_server.http("mona")  # a maintainer: allowed to run code on the server at all
    for off_list in (target, "json:loads"):
        started = mona.post("/api/pipelines/runs", json={"pipeline": off_list})
        assert started.status_code == 403, started.text
        assert "allow-list (tests.pipelines)" in started.json()["error"]["message"]
        tuned = mona.post("/api/tuning", json={"objective": off_list, "space": {}, "n_trials": 1})
        assert tuned.status_code == 403, tuned.text
        trigger = mona.post("/api/triggers", json={"name": "t", "pipeline": off_list,
                                                   "kind": "webhook"})  # fmt: skip
        assert trigger.status_code == 403, trigger.text
    assert mona.get("/api/triggers").json() == []  # nothing refused was stored
    spec = {"retrain": {"pipeline": target, "on": ["data-drift"]}}
    monitor = mona.post("/api/monitors", json={
        "name": "m", "deployment": "nope", "reference": "d@1", "spec": spec,
    })  # fmt: skip
    assert monitor.status_code == 403, monitor.text  # before the deployment is looked up
    started = mona.post("/api/pipelines/runs", json={"pipeline": ALLOWED, "params": {"rows": 60}})
    assert started.status_code == 202, started.text  # the allow-list's own modules run
    assert not mark.exists()


def test_a_recorded_target_off_the_list_is_not_resumed(
    users_server: Any, planted: tuple[str, Path]
) -> None:
    """An editor can log a run whose recorded target is any path; a maintainer's resume of it
    must not import that path on the server."""
    target, mark = planted
    with opsloop.Client(server_url=users_server.url, token=users_server.keys["eddie"]) as eddie:
        experiment = eddie.create_experiment("planted").experiment_id
        run = eddie.create_run(experiment, tags={"opsloop.pipeline.target": target})
        eddie.end_run(run.info.run_id)
    mona = users_server.http("mona")
    for action in ("resume", "reproduce"):
        again = mona.post(f"/api/pipelines/runs/{run.info.run_id}/{action}", json={})
        assert again.status_code == 403, again.text
    assert not mark.exists()


def test_a_stored_trigger_off_the_list_fails_its_firing(
    users_server: Any, planted: tuple[str, Path]
) -> None:
    """A trigger stored before the allow-list changed (here: written on the store directly)
    fails its firing with the reason, and imports nothing."""
    target, mark = planted
    state = users_server.server.app.state.opsloop
    with opsloop.Client(database_url=users_server.database_url,
                        blob_url=state.settings.blob_url) as local:  # fmt: skip
        local.triggers.create("old", target, "webhook")
        local.triggers.fire("old", key="one", run=False)
    scheduler = Scheduler(state.client, state.store, None, None, code=state.code)
    try:
        scheduler.run_pending_firings(wait=True)
    finally:
        scheduler.stop()
    with opsloop.Client(server_url=users_server.url, token=users_server.keys["mona"]) as mona:
        (firing,) = mona.triggers.firings("old")
    assert firing.status == "failed" and "allow-list" in (firing.message or "")
    assert not mark.exists()


def test_the_server_says_what_code_it_runs() -> None:
    helped = subprocess.run(
        [str(Path(sys.executable).parent / "opsloop"), "server", "--help"], capture_output=True,
        text=True, env={"COLUMNS": "200", "PATH": ""}, timeout=60,
    )  # fmt: skip
    assert helped.returncode == 0 and "--allow-code" in helped.stdout
    assert json.dumps(CodePolicy.parse("a.b").describe()) == '"modules under a.b only"'
