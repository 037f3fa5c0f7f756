"""Resuming a failed pipeline run from its failed step, and reproducing a finished one with a
step-by-step comparison of the outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import opsloop
from opsloop.errors import InvalidInput
from opsloop.pipelines.reruns import reproduce, resume
from opsloop.pipelines.runner import PipelineFailed
from tests.pipelines import example


@pytest.fixture
def client(sqlite_url: str, tmp_path: Path) -> Any:
    c = opsloop.Client(database_url=sqlite_url, blob_url=str(tmp_path / "blobs"))
    example.CALLS.clear()
    example.FLAKY_SWITCH["fail"] = True
    yield c
    c.close()


def test_resume_starts_at_the_failed_step(client: Any) -> None:
    with pytest.raises(PipelineFailed) as failed:
        example.resumable.run(client=client, rows=250)
    failed_run = failed.value.details["pipeline"].run_id
    assert example.CALLS == ["load", "split"]
    example.FLAKY_SWITCH["fail"] = False  # the disk has room again
    resumed = resume(client, failed_run)
    assert resumed.status == "FINISHED" and resumed.outputs["fragile"] == {"rows": 250}
    assert example.CALLS == ["load", "split"]  # not run again: cache hits
    assert [s.cached for s in resumed.steps] == [True, True, False]
    assert client.get_run(resumed.run_id).data.tags["opsloop.resumed_from"] == failed_run


def test_reproduce_compares_outputs_step_by_step(client: Any) -> None:
    stable = example.training.run(client=client, C=0.5, rows=300)
    same = reproduce(client, stable.run_id)
    assert same.identical and [s.step for s in same.steps] == ["load", "split", "train", "evaluate"]
    assert all(s.original_digest == s.new_digest for s in same.steps)
    assert client.get_run(same.run_id).data.tags["opsloop.reproduces"] == stable.run_id
    assert all(not s.cached for s in client_steps(client, same.run_id))
    moving = example.unstable.run(client=client)
    diff = reproduce(client, moving.run_id)
    assert not diff.identical
    noisy = next(s for s in diff.steps if s.step == "noisy")
    assert set(noisy.changes) == {"jitter"}  # rows stayed, the jitter moved
    assert [s.identical for s in diff.steps if s.step == "load"] == [True]


def client_steps(client: Any, run_id: str) -> list[Any]:
    from opsloop.pipelines.runner import StepResult

    run = client.get_run(run_id)
    found = client.search_runs(run.info.experiment_id, f"attributes.parent_run_id = '{run_id}'")
    return [
        StepResult(r.info.run_name, r.info.run_id, r.info.status,
                   cached=r.data.tags.get("opsloop.cache") == "hit")
        for r in found.items
    ]  # fmt: skip


def test_runs_that_are_not_pipelines_are_refused(client: Any) -> None:
    exp = client.set_experiment("plain")
    run = client.create_run(exp.experiment_id, capture_env=False)
    with pytest.raises(InvalidInput, match="not a pipeline run"):
        resume(client, run.info.run_id)


def test_reproduce_and_resume_commands(tmp_path: Path) -> None:
    cli = str(Path(sys.executable).with_name("opsloop"))
    root = Path(example.__file__).parents[2]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cli, *args], capture_output=True, text=True, timeout=180, cwd=root)

    first = run("pipelines", "run", "tests.pipelines.example:training", "--param", "rows=200")
    assert first.returncode == 0, first.stderr
    run_id = first.stdout.split("(run ")[1].split(")")[0]
    same = run("runs", "reproduce", run_id)
    assert same.returncode == 0 and same.stdout.count("identical") == 4, same.stdout
    moved = run("pipelines", "run", "tests.pipelines.example:unstable")
    moved_id = moved.stdout.split("(run ")[1].split(")")[0]
    differs = run("runs", "reproduce", moved_id)
    assert differs.returncode == 1 and "jitter" in differs.stdout
    again = run("pipelines", "resume", run_id)
    assert again.returncode == 0 and again.stdout.count("cached from run") == 4
