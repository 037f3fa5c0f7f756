"""Every attempt at a step is recorded and shown (the CLI, ``--json``, REST, the run's page):
a worker that died and was retried is not one clean success. One retry policy for every
executor: the step's ``retries`` counts exceptions and dead workers together (Ray retries
nothing itself), so ``retries=0`` runs a step at most once. What an attempt printed before its
worker died is in the step's logs, under that attempt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import opsloop
from opsloop.pipelines import step_logs
from opsloop.pipelines.attempts import Attempt
from opsloop.pipelines.attempts import attempts_tag
from opsloop.pipelines.attempts import read_attempts
from opsloop.pipelines.runner import PipelineFailed
from tests.conftest import LiveServer
from tests.pipelines import attempts_example
from tests.pipelines import example

DIED = "WorkerDied: the step's"


def _attempts(client: Any, run_id: str) -> list[tuple[int, str | None]]:
    (s,) = client.pipelines.get_run(run_id).steps
    return [(a.number, a.outcome) for a in s.attempts]


def _failed(run: Any, **params: Any) -> Any:
    """The pipeline run that ``run(**params)`` failed with."""
    with pytest.raises(PipelineFailed) as failed:
        run(**params)
    return failed.value.details["pipeline"]


def test_a_crash_then_success_shows_both_attempts_everywhere(tmp_path: Path) -> None:
    """The process executor; the CLI (text and --json), REST and the page read one store."""
    database, blobs = f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "blobs")
    client = opsloop.Client(database_url=database, blob_url=blobs)
    folder = str(tmp_path / "count")
    run = attempts_example.crashing.run(client=client, executor="process", folder=folder)
    assert run.status == "FINISHED" and run.outputs["crash_prone"] == "answered on attempt 2"
    assert [(a.number, a.outcome) for a in run.step("crash_prone").attempts] == [
        (1, "crashed"), (2, "succeeded")]  # fmt: skip
    client.close()

    with LiveServer(database, blobs) as server:
        answer = httpx.get(f"{server.url}/api/pipelines/runs/{run.run_id}")
        assert answer.status_code == 200
        (rest,) = answer.json()["steps"]
        assert [(a["number"], a["outcome"]) for a in rest["attempts"]] == [
            (1, "crashed"), (2, "succeeded")]  # fmt: skip
        assert (
            "exit code 1" in rest["attempts"][0]["error"] and rest["attempts"][1]["error"] is None
        )
        assert all(a["duration_s"] > 0 for a in rest["attempts"])

        page = httpx.get(f"{server.url}/pipelines/runs/{run.run_id}").text
        assert 'id="attempts-table"' in page
        assert 'data-attempt="1" data-outcome="crashed"' in page
        assert 'data-attempt="2" data-outcome="succeeded"' in page
        assert "2 attempts" in page  # on the step's box in the DAG

        shown = _cli(server.url, "pipelines", "show", run.run_id)
        lines = [line.split() for line in shown.splitlines() if "attempt " in line]
        assert [line[:3] for line in lines] == [["attempt", "1", "crashed"],
                                                ["attempt", "2", "succeeded"]]  # fmt: skip
        assert "exit code 1" in shown
        as_json = json.loads(_cli(server.url, "pipelines", "show", run.run_id, "--json"))
        assert [a["outcome"] for a in as_json["steps"][0]["attempts"]] == ["crashed", "succeeded"]

        logs = _cli(server.url, "pipelines", "logs", run.run_id, "crash_prone")
        first, second = logs.split("--- attempt 2 ---")
        assert "attempt 1: last words before the crash" in first  # flushed, then os._exit
        assert "[attempt 1 crashed: WorkerDied" in first
        assert "attempt 2: done" in second and "last words" not in second
        assert "(nothing printed)" not in logs


def _cli(server_url: str, *args: str) -> str:
    cli = str(Path(sys.executable).with_name("opsloop"))
    done = subprocess.run([cli, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OPSLOOP_SERVER_URL": server_url,
                               "COLUMNS": "200"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_retries_zero_runs_a_crashing_step_once(client: Any, tmp_path: Path) -> None:
    folder = tmp_path / "count"
    failed = _failed(attempts_example.crash_once_unretried.run, client=client,
                     executor="process", folder=str(folder))  # fmt: skip
    assert failed.status == "FAILED" and len(list(folder.iterdir())) == 1  # ran once, never again
    assert _attempts(client, failed.run_id) == [(1, "crashed")]
    assert client.get_run(failed.run_id).info.status == "FAILED"


def test_three_crashes_keep_three_errors_and_three_outputs(client: Any, tmp_path: Path) -> None:
    failed = _failed(attempts_example.crashing.run, client=client, executor="process",
                     folder=str(tmp_path / "count"), crashes=3)  # fmt: skip
    (s,) = client.pipelines.get_run(failed.run_id).steps
    assert [a.outcome for a in s.attempts] == ["crashed"] * 3 and s.status == "FAILED"
    assert all(a.error and a.error.startswith(DIED) for a in s.attempts)
    (logs,) = client.pipelines.logs(failed.run_id)
    for n in (1, 2, 3):
        assert f"attempt {n}: last words before the crash\n[attempt {n} crashed:" in logs.text


def test_exceptions_and_crashes_share_one_budget(client: Any, tmp_path: Path) -> None:
    """retries=2: a raise, a crash, then an answer; the raise's error is kept too."""
    run = attempts_example.mixed_failures.run(client=client, executor="process",
                                              folder=str(tmp_path / "count"))  # fmt: skip
    (s,) = client.pipelines.get_run(run.run_id).steps
    assert [(a.outcome, (a.error or "")[:20]) for a in s.attempts] == [
        ("failed", "RuntimeError: a flak"), ("crashed", DIED[:20]), ("succeeded", "")]  # fmt: skip
    assert run.outputs["raises_then_crashes"] == "answered on attempt 3"


def test_a_killed_timeout_keeps_what_it_printed(client: Any) -> None:
    failed = _failed(attempts_example.sleepy.run, client=client, executor="process")
    assert _attempts(client, failed.run_id) == [(1, "timeout")]
    (logs,) = client.pipelines.logs(failed.run_id)
    assert logs.text == ("started, then slept\n[attempt 1 timeout: StepTimedOut: the step took "
                         "longer than its timeout of 1 s]\n")  # fmt: skip


def test_local_exception_retries_are_shown(client: Any) -> None:
    """The thread executor: ``opsloop.step.retries`` was set, now every attempt shows."""
    example.ATTEMPTS.clear()
    run = example.retried.run(client=client)
    (s,) = client.pipelines.get_run(run.run_id).steps
    assert [(a.number, a.outcome, a.error) for a in s.attempts] == [
        (1, "failed", "RuntimeError: a flaky network"), (2, "succeeded", None)]  # fmt: skip
    cached = example.retried.run(client=client)  # cache=False: it runs again, once
    assert [a.outcome for a in cached.step("second_time_lucky").attempts] == ["succeeded"]


def test_a_spool_keeps_its_head_and_latest_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(step_logs, "HEAD_BYTES", 20)
    monkeypatch.setattr(step_logs, "TAIL_BYTES", 30)
    folder = tmp_path / "attempt"
    folder.mkdir()
    with step_logs.capturing(str(folder)) as logs:
        for i in range(100):
            logs.write(f"line {i:03d}\n")
    assert len(list(folder.iterdir())) == 3  # the head and two tail segments, no more
    text = step_logs.take_spooled(folder) or ""
    assert text.startswith("line 000\nline 001\nline 002\n") and text.endswith("line 099\n")
    assert "left out" in text and "line 050" not in text and not folder.exists()
    assert step_logs.take_spooled(folder) is None  # claimed once


def test_the_worker_or_the_driver_keeps_an_attempts_output_never_both(tmp_path: Path) -> None:
    folder = tmp_path / "attempt"
    folder.mkdir()
    with step_logs.capturing(str(folder)) as logs:
        logs.write("finished normally\n")
        assert logs.release()  # the worker claims it: it keeps the text itself
    assert step_logs.take_spooled(folder) is None
    folder.mkdir()
    with step_logs.capturing(str(folder)) as logs:
        logs.write("still running at its timeout\n")
        assert step_logs.take_spooled(folder) == "still running at its timeout\n"
        assert not logs.release()  # a thread that outlived its timeout keeps nothing
    with step_logs.capturing(str(tmp_path / "elsewhere")) as logs:  # a remote Ray node
        logs.write("no folder here\n")
        assert logs.release() and logs.text() == "no folder here\n"


def test_the_attempts_tag_fits_however_many_attempts() -> None:
    many = [Attempt(n, "failed", 0.5, "ValueError: " + "x" * 2000) for n in range(1, 201)]
    text = attempts_tag(many)
    assert len(text) <= 8000
    kept = json.loads(text)
    assert kept[0]["number"] == 1 and kept[-1]["number"] == 200
    old = read_attempts({"opsloop.step.retries": "2"}, "FINISHED")  # before attempts were kept
    assert [(a["number"], a["outcome"]) for a in old] == [
        (1, "failed"), (2, "failed"), (3, "succeeded")]  # fmt: skip


@pytest.fixture
def ray_instance(local_ray: Any) -> Any:
    """The test process's local Ray instance."""
    return local_ray


def test_ray_crash_then_success_keeps_both_attempts_and_their_output(
    ray_instance: Any, client: Any, tmp_path: Path
) -> None:
    run = attempts_example.crashing.run(client=client, executor="ray",
                                        folder=str(tmp_path / "count"))  # fmt: skip
    assert run.outputs["crash_prone"] == "answered on attempt 2"
    assert _attempts(client, run.run_id) == [(1, "crashed"), (2, "succeeded")]
    (s,) = client.pipelines.get_run(run.run_id).steps
    assert "Ray worker died" in (s.attempts[0].error or "")
    (logs,) = client.pipelines.logs(run.run_id, "crash_prone")
    first, second = (logs.text or "").split("--- attempt 2 ---")
    assert "attempt 1: last words before the crash" in first and "attempt 2: done" in second


def test_ray_follows_the_steps_retries(ray_instance: Any, client: Any, tmp_path: Path) -> None:
    """retries=0: one attempt, FAILED (Ray used to run it up to three times); retries=2 and
    three crashes: three attempts, each error kept."""
    once = tmp_path / "once"
    failed = _failed(attempts_example.crash_once_unretried.run, client=client, executor="ray",
                     folder=str(once))  # fmt: skip
    assert len(list(once.iterdir())) == 1 and failed.status == "FAILED"
    assert _attempts(client, failed.run_id) == [(1, "crashed")]
    thrice = _failed(attempts_example.crashing.run, client=client, executor="ray",
                     folder=str(tmp_path / "thrice"), crashes=3)  # fmt: skip
    (s,) = client.pipelines.get_run(thrice.run_id).steps
    assert [a.outcome for a in s.attempts] == ["crashed"] * 3
    assert all("Ray worker died" in (a.error or "") for a in s.attempts)
