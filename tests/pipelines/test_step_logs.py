"""A step's logs: what it prints, warns and logs is kept on its run as logs.txt (on threads
side by side, in a process of its own, when it fails), shown by the CLI, the SDK, REST and the
run's page; a cached step shows the logs of the run that computed it."""

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
from opsloop.errors import NotFound
from opsloop.pipelines import step_logs
from opsloop.pipelines.runner import PipelineFailed
from tests.conftest import LiveServer
from tests.pipelines import example

# the chatty steps warn on purpose: what they warn is read from their logs, not from pytest's
pytestmark = pytest.mark.filterwarnings("ignore:(left|right) warned:UserWarning")


def _texts(client: Any, run_id: str) -> dict[str, str | None]:
    return {s.step: s.text for s in client.pipelines.logs(run_id)}


@pytest.mark.parametrize("executor", ["local", "process"])
def test_each_step_keeps_what_it_printed(client: Any, executor: str) -> None:
    run = example.talking.run(client=client, executor=executor, lines=4)
    texts = _texts(client, run.run_id)
    for side, other in (("chatty", "right"), ("chatty_2", "left")):
        text = texts[side] or ""
        marker = "left" if side == "chatty" else "right"
        assert [f"{marker} line {i}" in text for i in range(4)] == [True] * 4
        assert f"{marker} logged" in text and f"{marker} on stderr" in text
        assert other not in text  # side by side on threads, yet not mixed up
    assert texts["add_up"] is None  # printed nothing: no file at all
    assert [a.path for a in client.list_artifacts(run.step("add_up").run_id)] == [
        "output/output.json"
    ]


def test_a_failed_step_keeps_its_logs_and_a_cached_one_shows_the_original(
    client: Any,
) -> None:
    with pytest.raises(PipelineFailed):
        example.talking_then_failing.run(client=client)
    failed = client.search_runs("pipeline-talking_then_failing").items
    parent = next(r for r in failed if r.info.parent_run_id is None).info.run_id
    texts = _texts(client, parent)
    assert "about to fail after 4 lines" in (texts["fails_loudly"] or "")
    assert "left line 1" in (texts["chatty"] or "")
    with pytest.raises(PipelineFailed):  # again: the chatty steps are cache hits now
        example.talking_then_failing.run(client=client)
    latest = max((r for r in client.search_runs("pipeline-talking_then_failing").items
                  if r.info.parent_run_id is None), key=lambda r: r.info.start_time)  # fmt: skip
    (cached,) = client.pipelines.logs(latest.info.run_id, "chatty")
    assert cached.logs_run_id != cached.run_id and "left line 1" in (cached.text or "")
    with pytest.raises(NotFound, match="no step 'nope'"):
        client.pipelines.logs(latest.info.run_id, "nope")


def test_a_cli_run_keeps_prints_records_and_warnings(tmp_path: Path) -> None:
    """Outside pytest (which records warnings and log records itself), as a user runs it."""
    cli = str(Path(sys.executable).with_name("opsloop"))
    environ = {**os.environ, "OPSLOOP_HOME": str(tmp_path / "home")}
    root = Path(example.__file__).parents[2]
    done = subprocess.run([cli, "pipelines", "run", "tests.pipelines.example:talking"],
                          capture_output=True, text=True, env=environ, cwd=root,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "left logged" in done.stderr and "left warned" in done.stderr  # the terminal too
    run_id = done.stdout.split("(run ")[1].split(")")[0]
    logs = subprocess.run([cli, "pipelines", "logs", run_id, "chatty"], capture_output=True,
                          text=True, env=environ, cwd=root, timeout=120)  # fmt: skip
    assert logs.returncode == 0, logs.stderr
    assert "left line 2" in logs.stdout and "WARNING tests.chatty: left logged" in logs.stdout
    assert "UserWarning: left warned" in logs.stdout and "right" not in logs.stdout
    assert logs.stdout.count("left logged") == 1  # caught once, not again from stderr


def test_a_retried_step_keeps_every_attempts_logs(client: Any) -> None:
    example.ATTEMPTS.clear()
    run = example.retried.run(client=client)
    (logs,) = client.pipelines.logs(run.run_id)
    assert logs.text == "attempt 1 starting\n--- attempt 2 ---\nattempt 2 starting\n"


def test_a_chatty_step_keeps_its_head_and_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(step_logs, "HEAD_BYTES", 20)
    monkeypatch.setattr(step_logs, "TAIL_BYTES", 30)
    logs = step_logs.StepLogs()
    for i in range(100):
        logs.write(f"line {i:03d}\n")
    text = logs.text()
    assert text.startswith("line 000\nline 001\nline 002\n") and text.endswith("line 099\n")
    assert "characters left out" in text and "line 050" not in text


def test_the_cli_rest_and_page_show_the_logs(tmp_path: Path) -> None:
    with LiveServer(f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "blobs")) as server:
        remote = opsloop.Client(server_url=server.url)
        view = remote.pipelines.run("tests.pipelines.example:talking", params={"lines": 2})
        texts = {s.step: s.text for s in remote.pipelines.logs(view.run_id)}
        assert "right line 1" in (texts["chatty_2"] or "") and texts["add_up"] is None
        answer = httpx.get(f"{server.url}/api/pipelines/runs/{view.run_id}/logs",
                           params={"step": "chatty"})  # fmt: skip
        assert answer.status_code == 200 and [s["step"] for s in answer.json()] == ["chatty"]
        missing = httpx.get(f"{server.url}/api/pipelines/runs/{view.run_id}/logs",
                            params={"step": "nope"})  # fmt: skip
        assert missing.status_code == 404 and "no step 'nope'" in missing.text
        page = httpx.get(f"{server.url}/pipelines/runs/{view.run_id}").text
        assert 'id="logs"' in page and "left line 0" in page

        cli = str(Path(sys.executable).with_name("opsloop"))
        environ = {**os.environ, "OPSLOOP_SERVER_URL": server.url}

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([cli, "pipelines", "logs", view.run_id, *args], env=environ,
                                  capture_output=True, text=True, timeout=120)  # fmt: skip

        shown = run()
        assert shown.returncode == 0 and "left line 1" in shown.stdout
        assert "(nothing printed)" in shown.stdout  # add_up
        one = json.loads(run("chatty_2", "--json").stdout)
        assert [s["step"] for s in one] == ["chatty_2"] and "right line 0" in one[0]["text"]
        unknown = run("nope")
        assert unknown.returncode == 3 and "no step 'nope'" in unknown.stderr
        remote.close()
