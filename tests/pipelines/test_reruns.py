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
from opsloop.pipelines.reruns import reproduce
from opsloop.pipelines.reruns import resume
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


def test_reproduce_in_a_clean_environment_from_its_lock(client: Any, monkeypatch: Any) -> None:
    import json

    monkeypatch.chdir(Path(example.__file__).parents[2])  # in the repository: a commit is recorded
    stable = example.training.run(client=client, C=0.5, rows=300)
    result = reproduce(client, stable.run_id, clean_env=True)
    assert result.identical, result.steps
    assert result.changed_packages == []  # the clean environment holds exactly the lock
    assert result.commit[0] == result.commit[1]  # and ran the recorded commit's code
    env = result.environment
    assert env["linked"] > 20 and env["installed"] == [] and not env["reused"]
    python = Path(env["path"]) / "bin" / "python"
    probe = (
        "import json, sys, site; from importlib import metadata; "
        "print(json.dumps([sys.prefix, site.getsitepackages(), "
        "sorted({d.metadata['Name'].lower() for d in metadata.distributions()})]))"
    )
    prefix, sites, names = json.loads(
        subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout
    )
    assert prefix == env["path"] and all(p.startswith(env["path"]) for p in sites)
    recorded = client.read_artifact(stable.run_id, "_opsloop/requirements.lock").decode()
    assert names == sorted({line.split("==")[0].lower() for line in recorded.split()})
    again = reproduce(client, stable.run_id, clean_env=True)
    assert again.identical and again.environment["reused"]


def test_a_clean_reproduction_needs_no_clone_of_the_repository(
    client: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    import shutil

    from tests.pipelines.foreign import run_foreign_pipeline

    project = tmp_path / "project"
    stable = run_foreign_pipeline(project, client, monkeypatch)
    recorded = client.get_run(stable.run_id).data.tags
    shutil.rmtree(project)  # the project is gone; tmp_path is no repository
    result = reproduce(client, stable.run_id, clean_env=True)
    assert result.identical, result.steps
    assert [s.step for s in result.steps] == ["fit", "summary"]
    env = result.environment
    assert env["code"].startswith("source tree ") and "from the store" in env["code"]
    assert result.commit == (recorded["opsloop.git.commit"],) * 2
    assert result.changed_packages == [] and env["installed"] == []
    again = client.get_run(result.run_id).data.tags
    assert again["opsloop.reproduces"] == stable.run_id
    assert "opsloop.git.commit" not in again  # it ran in a restored folder, not in a clone


def test_a_clean_reproduction_needs_what_the_run_recorded(client: Any, monkeypatch: Any) -> None:
    exp = client.set_experiment("pipeline-bare")
    target = {"opsloop.pipeline.target": "tests.pipelines.example:training"}
    bare = client.create_run(exp.experiment_id, capture_env=False, tags=target)
    with pytest.raises(InvalidInput, match="recorded no git commit"):
        reproduce(client, bare.info.run_id, clean_env=True)
    client.set_tag(bare.info.run_id, "opsloop.git.commit", "0" * 40)
    with pytest.raises(InvalidInput, match="recorded no package lock"):
        reproduce(client, bare.info.run_id, clean_env=True)
    client.log_text(bare.info.run_id, "numpy==1.0\n", "_opsloop/requirements.lock")
    client.set_tag(bare.info.run_id, "opsloop.env.lock_hash", "f" * 64)
    with pytest.raises(InvalidInput, match="no git repository here"):  # tmp_path is not a clone
        reproduce(client, bare.info.run_id, clean_env=True)
    monkeypatch.chdir(Path(example.__file__).parents[2])
    with pytest.raises(InvalidInput, match="is not in"):
        reproduce(client, bare.info.run_id, clean_env=True)


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


def test_reproduce_and_resume_commands(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The commands in this process; the one whose exit code says "not identical" through the
    installed command."""
    from tests.finetune.support import cli

    root = Path(example.__file__).parents[2]
    monkeypatch.chdir(root)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        code, out = cli(*args)
        return subprocess.CompletedProcess(args, code, out, capsys.readouterr().err)

    first = run("pipelines", "run", "tests.pipelines.example:training", "--param", "rows=200")
    assert first.returncode == 0, first.stderr
    run_id = first.stdout.split("(run ")[1].split(")")[0]
    same = run("runs", "reproduce", run_id)
    assert same.returncode == 0 and same.stdout.count("identical") == 4, same.stdout
    moved = run("pipelines", "run", "tests.pipelines.example:unstable")
    moved_id = moved.stdout.split("(run ")[1].split(")")[0]
    cli_path = str(Path(sys.executable).with_name("opsloop"))
    differs = subprocess.run([cli_path, "runs", "reproduce", moved_id], capture_output=True,
                             text=True, timeout=180, cwd=root)  # fmt: skip
    assert differs.returncode == 1 and "jitter" in differs.stdout
    again = run("pipelines", "resume", run_id)
    assert again.returncode == 0 and again.stdout.count("cached from run") == 4


def test_a_commit_missing_here_is_fetched_from_the_recorded_remote(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from opsloop.pipelines.cleanenv import checkout
    from opsloop.pipelines.cleanenv import remove_worktree
    from tests.gitrepos import git
    from tests.gitrepos import new_repo

    origin, here = tmp_path / "origin", tmp_path / "here"
    commit = new_repo(origin, {"train.py": "print('pushed from another machine')\n"})
    new_repo(here, {})
    git(origin, "config", "uploadpack.allowAnySHA1InWant", "true")
    monkeypatch.chdir(here)
    with pytest.raises(InvalidInput, match="is not in"):
        checkout(commit, None, tmp_path / "wt0")
    repo, tree = checkout(commit, None, tmp_path / "wt", remote=str(origin))
    assert (tree / "train.py").read_text() == "print('pushed from another machine')\n"
    remove_worktree(repo, tree)
    assert not tree.exists()
