"""Pipeline runs over REST, the SDK and the CLI: start one on a server (202 with its id, then
its DAG while and after it runs), the DAG's columns and states, and the bad requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsloop import Client
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from tests.conftest import LiveServer

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder: Path = tmp_path_factory.mktemp("pipeline-runs")
    with LiveServer(f"sqlite:///{folder / 'runs.db'}", str(folder / "blobs")) as live:
        yield live


@pytest.fixture
def remote(server: LiveServer) -> Iterator[Client]:
    client = Client(server_url=server.url)
    yield client
    client.close()


def test_a_run_started_over_rest_shows_its_dag(remote: Client) -> None:
    view = remote.pipelines.run("tests.pipelines.example:registered", params={"C": 1.0})
    assert view.status == "FINISHED" and view.trigger == "api"
    assert view.target == "tests.pipelines.example:registered" and view.params == {"C": 1.0}
    steps = {s.name: s for s in view.steps}
    assert {n: s.rank for n, s in steps.items()} == {"load": 0, "holdout": 1, "fit": 2, "score": 3}
    assert steps["score"].inputs == ["fit", "holdout.test"]
    assert steps["holdout"].outputs == ["test", "train"]
    assert steps["fit"].model_version and steps["fit"].model_version.startswith("pipeline-clf@")
    assert all(s.status == "FINISHED" and s.duration_s is not None for s in view.steps)

    started = remote.pipelines.run(
        "tests.pipelines.example:registered", params={"C": 1.0}, wait=False
    )
    assert started.status == "RUNNING"
    deadline = time.monotonic() + 60
    while started.status == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
        started = remote.pipelines.get_run(started.run_id)
    assert started.status == "FINISHED" and all(s.cache == "hit" for s in started.steps)
    by_prefix = remote.pipelines.get_run(started.run_id[:8])  # the id as the tool prints it
    assert by_prefix.run_id == started.run_id and len(by_prefix.steps) == 4
    assert [s.step for s in remote.pipelines.logs(started.run_id[:8], "fit")] == ["fit"]
    listed = remote.pipelines.list_runs(pipeline="registered")
    assert [r.run_id for r in listed[:2]] == [started.run_id, view.run_id]
    assert all(r.pipeline == "registered" and r.status == "FINISHED" for r in listed)
    with pytest.raises(InvalidInput, match="limit must be between 1 and 1000"):
        remote.pipelines.list_runs(limit=0)


def test_a_failed_run_shows_the_failure_and_what_never_ran(remote: Client) -> None:
    view = remote.pipelines.run("tests.pipelines.example:broken_chain")
    assert view.status == "FAILED" and view.failed_step == "explode"
    states = {s.name: s.status for s in view.steps}
    assert states == {"load": "FINISHED", "explode": "FAILED", "report": "SKIPPED"}
    failed = next(s for s in view.steps if s.name == "explode")
    assert failed.error == "RuntimeError: the cluster caught fire"


def test_a_failed_run_is_resumed_on_the_server(server: LiveServer, remote: Client) -> None:
    from tests.pipelines import example

    example.FLAKY_SWITCH["fail"] = True
    failed = remote.pipelines.run("tests.pipelines.example:resumable", params={"rows": 120})
    assert failed.status == "FAILED" and failed.failed_step == "fragile"
    example.FLAKY_SWITCH["fail"] = False  # the disk has room again
    try:
        resumed = remote.pipelines.resume(failed.run_id)
        page = httpx.post(f"{server.url}/pipelines/runs/{failed.run_id}/resume")
    finally:
        example.FLAKY_SWITCH["fail"] = True
    assert resumed.status == "FINISHED" and resumed.trigger == "api"
    cache = {s.name: s.cache for s in resumed.steps}
    assert cache == {"load": "hit", "split": "hit", "fragile": "miss"}
    assert remote.get_run(resumed.run_id).data.tags["opsloop.resumed_from"] == failed.run_id
    # the web UI's button: the answer is the new run's page
    assert page.status_code == 303 and page.headers["location"].startswith("/pipelines/runs/")
    assert page.headers["location"] != f"/pipelines/runs/{failed.run_id}"
    assert 'id="resume"' in httpx.get(f"{server.url}/pipelines/runs/{failed.run_id}").text
    assert 'id="resume"' not in httpx.get(f"{server.url}/pipelines/runs/{resumed.run_id}").text

    with pytest.raises(NotFound):
        remote.pipelines.resume("0" * 32)
    plain = remote.create_run(remote.set_experiment("plain").experiment_id)
    with pytest.raises(InvalidInput, match="is not a pipeline run"):
        remote.pipelines.resume(plain.info.run_id)
    answer = httpx.post(f"{server.url}/api/pipelines/runs/{failed.run_id}/resume",
                        json={"executor": "gpu", "extra": 1})  # fmt: skip
    assert answer.status_code == 400 and "extra" in answer.json()["error"]["message"]


def test_a_run_is_reproduced_on_the_server(server: LiveServer, remote: Client) -> None:
    stable = remote.pipelines.run("tests.pipelines.example:training", params={"rows": 200})
    result = remote.pipelines.reproduce(stable.run_id)
    assert result.identical and result.original_run_id == stable.run_id
    assert [s.step for s in result.steps] == ["load", "split", "train", "evaluate"]
    again = remote.pipelines.get_run(result.run_id)
    assert again.reproduces == stable.run_id and {s.cache for s in again.steps} == {"miss"}
    moving = remote.pipelines.run("tests.pipelines.example:unstable")
    diff = remote.pipelines.reproduce(moving.run_id)
    assert not diff.identical
    assert set(next(s for s in diff.steps if s.step == "noisy").changes) == {"jitter"}

    answer = httpx.get(f"{server.url}/api/pipelines/runs/{stable.run_id}/reproduction")
    assert answer.status_code == 400 and "not a reproduction" in answer.text
    with pytest.raises(NotFound):
        remote.pipelines.reproduce("0" * 32)

    # the web UI: a finished run's button, then the reproduction's page compares the two
    assert 'id="reproduce"' in httpx.get(f"{server.url}/pipelines/runs/{stable.run_id}").text
    shown = _reproduce_from_the_page(server, remote, stable.run_id, {})
    assert 'id="verdict">identical<' in shown and 'id="comparison"' in shown
    assert 'id="reproduce"' not in shown  # a reproduction is not reproduced again from here


def _reproduce_from_the_page(
    server: LiveServer, remote: Client, run_id: str, form: dict[str, str]
) -> str:
    """Press a run page's Reproduce button; the reproduction's page once it has ended."""
    page = httpx.post(f"{server.url}/pipelines/runs/{run_id}/reproduce", data=form, timeout=300)
    assert page.status_code == 303
    new_id = page.headers["location"].rsplit("/", 1)[1]
    deadline = time.monotonic() + 120
    while remote.pipelines.get_run(new_id).status == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    return httpx.get(f"{server.url}/pipelines/runs/{new_id}").text


def test_a_server_reproduces_in_a_clean_environment_with_no_clone(
    server: LiveServer, remote: Client, tmp_path: Path, monkeypatch: Any
) -> None:
    import shutil

    from tests.pipelines.foreign import run_foreign_pipeline

    project = tmp_path / "project"
    stable = run_foreign_pipeline(project, remote, monkeypatch)  # ran here, recorded there
    shutil.rmtree(project)  # neither side has a clone now
    result = remote.pipelines.reproduce(stable.run_id, clean_env=True)
    assert result.identical and [s.step for s in result.steps] == ["fit", "summary"]
    env = result.environment
    assert "from the store" in env["code"] and env["installed"] == [] and env["linked"] > 20
    commit = remote.get_run(stable.run_id).data.tags["opsloop.git.commit"]
    assert result.commit == (commit, commit)
    # GET .../reproduction tells the same, from what the reproduction's run recorded
    again = httpx.get(f"{server.url}/api/pipelines/runs/{result.run_id}/reproduction").json()
    assert again["environment"]["code"] == env["code"] and again["identical"]

    # the CLI, and the web UI's box; a run with too little recorded is refused before it starts
    cli = str(Path(sys.executable).with_name("opsloop"))
    done = subprocess.run(
        [cli, "runs", "reproduce", stable.run_id, "--clean-env", "--on-server"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "OPSLOOP_SERVER_URL": server.url},
    )  # fmt: skip
    assert done.returncode == 0 and "in a clean environment (reused" in done.stdout, done.stderr
    assert done.stdout.count("identical") == 2 and "from the store" in done.stdout
    shown = _reproduce_from_the_page(server, remote, stable.run_id, {"clean_env": "1"})
    assert 'id="verdict">identical<' in shown and 'id="clean-environment"' in shown
    target = {"opsloop.pipeline.target": "foreign_flows:training"}
    bare = remote.create_run(remote.set_experiment("bare").experiment_id, capture_env=False,
                             tags=target)  # fmt: skip
    answer = httpx.post(f"{server.url}/api/pipelines/runs/{bare.info.run_id}/reproduce",
                        json={"clean_env": True})  # fmt: skip
    assert answer.status_code == 400 and "recorded no git commit" in answer.text


def test_bad_requests_start_nothing(server: LiveServer, remote: Client) -> None:
    with pytest.raises(InvalidInput, match="cannot import nowhere"):
        remote.pipelines.run("nowhere:training")
    with pytest.raises(InvalidInput, match="param 'C' of step 'fit' expects float"):
        remote.pipelines.run("tests.pipelines.example:registered", params={"C": "high"})
    with pytest.raises(InvalidInput, match="unexpected keyword argument 'epochs'"):
        remote.pipelines.run("tests.pipelines.example:registered", params={"epochs": 3})
    with pytest.raises(InvalidInput, match="is not a @pipeline"):
        remote.pipelines.run("tests.pipelines.example:load")
    with pytest.raises(InvalidInput, match="executor 'gpu'"):
        remote.pipelines.run("tests.pipelines.example:registered", executor="gpu")
    with pytest.raises(NotFound):
        remote.pipelines.get_run("0" * 32)
    answer = httpx.post(f"{server.url}/api/pipelines/runs", json={"pipeline": 3, "extra": 1})
    assert answer.status_code == 400 and "extra" in answer.json()["error"]["message"]


def test_cli_draws_the_dag_and_runs_on_the_server(server: LiveServer, tmp_path: Any) -> None:
    cli = str(Path(sys.executable).with_name("opsloop"))
    env = {"PATH": str(Path(sys.executable).parent), "OPSLOOP_SERVER_URL": server.url,
           "OPSLOOP_HOME": str(tmp_path), "COLUMNS": "200"}  # fmt: skip

    def run(*args: str, code: int = 0) -> str:
        done = subprocess.run([cli, *args], capture_output=True, text=True, timeout=120,
                              cwd=ROOT, env=env)  # fmt: skip
        assert done.returncode == code, done.stdout + done.stderr
        return done.stdout + done.stderr

    out = run("pipelines", "run", "tests.pipelines.example:registered", "--on-server")
    assert "pipeline registered: FINISHED" in out
    run_id = out.split("(run ")[1].split(")")[0]
    lines = [line for line in out.splitlines() if "←" in line or "load" in line]
    assert lines[0].lstrip().startswith("1") and "load" in lines[0]
    assert any(line.lstrip().startswith("4") and "score" in line and "← fit, holdout.test" in line
               for line in lines)  # fmt: skip
    shown = json.loads(run("pipelines", "runs", "show", run_id, "--json"))
    assert [s["rank"] for s in shown["steps"]] == [0, 1, 2, 3]
    listed = json.loads(run("pipelines", "runs", "list", "--pipeline", "registered", "--json"))
    assert listed[0]["run_id"] == run_id
    assert run_id in run("pipelines", "runs", "list")
    failed = run("pipelines", "run", "tests.pipelines.example:broken_chain", "--on-server", code=8)
    assert "explode" in failed and "the cluster caught fire" in failed and "skipped" in failed
    failed_id = failed.split("(run ")[1].split(")")[0]
    again = run("pipelines", "resume", failed_id, "--on-server", code=8)  # it fails again
    reproduced = run("runs", "reproduce", run_id, "--on-server")
    assert f"reproduced {run_id[:8]}" in reproduced and "identical" in reproduced
    assert "the cluster caught fire" in again and failed_id not in again.split("(run ")[1]
