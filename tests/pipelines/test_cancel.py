"""Cancelling a running pipeline: no step starts after the request, a step in its own process
(or on Ray) is stopped at once, one on a thread finishes; the run ends KILLED with who
cancelled it, and resume runs what did not finish. From the SDK, REST, the CLI and the page."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import opsloop
from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.pipelines.reruns import resume
from opsloop.pipelines.runner import PipelineCancelled
from tests.conftest import LiveServer
from tests.pipelines import example


def _start(client: Any, marker: Path, executor: str) -> tuple[threading.Thread, dict[str, Any]]:
    """Run the held pipeline on a thread until its step has started; (the thread, outcome)."""
    marker.write_text("hold")
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["run"] = example.held_twice.run(
                client=client,
                executor=executor,
                marker=str(marker),
                on_start=lambda r: outcome.update(id=r),
            )
        except PipelineCancelled as exc:
            outcome["cancelled"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    while not Path(f"{marker}.started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Path(f"{marker}.started").exists(), "the step never started"
    return thread, outcome


def test_a_step_in_its_own_process_is_stopped_and_nothing_starts_after(
    client: Any, tmp_path: Path
) -> None:
    thread, outcome = _start(client, tmp_path / "hold", "process")
    view = client.pipelines.cancel(outcome["id"])
    assert view.status == "RUNNING"  # asked: the run sees it within a second or so
    started = time.monotonic()
    thread.join(30)
    assert not thread.is_alive() and time.monotonic() - started < 10
    cancelled = outcome["cancelled"]
    assert "cancelled" in cancelled.message
    shown = client.pipelines.get_run(outcome["id"])
    assert shown.status == "KILLED" and "cancelled by" in (shown.error or "")
    states = {s.name: s.status for s in shown.steps}
    assert states == {"load": "FINISHED", "hold": "KILLED", "after": "SKIPPED"}
    with pytest.raises(Conflict, match="already ended KILLED"):
        client.pipelines.cancel(outcome["id"])
    (tmp_path / "hold").unlink()  # let it finish this time
    again = resume(client, outcome["id"])
    assert again.status == "FINISHED" and [s.cached for s in again.steps] == [True, False, False]


def test_a_step_on_ray_is_cancelled(client: Any, tmp_path: Path, local_ray: Any) -> None:
    thread, outcome = _start(client, tmp_path / "hold", "ray")
    client.pipelines.cancel(outcome["id"])
    thread.join(60)
    assert not thread.is_alive() and "cancelled" in outcome["cancelled"].message
    states = {s.name: s.status for s in client.pipelines.get_run(outcome["id"]).steps}
    assert states == {"load": "FINISHED", "hold": "KILLED", "after": "SKIPPED"}


def test_a_step_on_a_thread_finishes_but_the_next_never_starts(client: Any, tmp_path: Path) -> None:
    marker = tmp_path / "hold"
    thread, outcome = _start(client, marker, "local")
    client.pipelines.cancel(outcome["id"])
    time.sleep(1.5)  # the runner has seen the request by now
    marker.unlink()  # the running step may finish
    thread.join(30)
    shown = client.pipelines.get_run(outcome["id"])
    assert shown.status == "KILLED"
    assert {s.name: s.status for s in shown.steps} == {
        "load": "FINISHED",
        "hold": "FINISHED",
        "after": "SKIPPED",
    }
    assert not Path(f"{marker}.second").exists()


def test_what_cannot_be_cancelled(client: Any) -> None:
    done = example.training.run(client=client, rows=120)
    with pytest.raises(Conflict, match="already ended FINISHED"):
        client.pipelines.cancel(done.run_id)
    plain = client.create_run(client.set_experiment("plain").experiment_id, capture_env=False)
    with pytest.raises(InvalidInput, match="not a pipeline run"):
        client.pipelines.cancel(plain.info.run_id)
    with pytest.raises(NotFound):
        client.pipelines.cancel("0" * 32)


def test_cancel_over_rest_the_cli_and_the_page(tmp_path: Path) -> None:
    marker = tmp_path / "hold"
    with LiveServer(f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "blobs")) as server:
        remote = opsloop.Client(server_url=server.url)
        marker.write_text("hold")
        view = remote.pipelines.run(
            "tests.pipelines.example:held_twice",
            wait=False,
            params={"marker": str(marker)},
            executor="process",
        )
        deadline = time.monotonic() + 60
        while not Path(f"{marker}.started").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        page = httpx.get(f"{server.url}/pipelines/runs/{view.run_id}").text
        assert 'id="cancel"' in page
        cli = str(Path(sys.executable).with_name("opsloop"))
        done = subprocess.run(
            [cli, "pipelines", "cancel", view.run_id],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "OPSLOOP_SERVER_URL": server.url},
        )
        assert done.returncode == 0 and "cancel" in done.stdout, done.stderr
        deadline = time.monotonic() + 30
        while remote.pipelines.get_run(view.run_id).status == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert remote.pipelines.get_run(view.run_id).status == "KILLED"
        again = httpx.post(f"{server.url}/api/pipelines/runs/{view.run_id}/cancel")
        assert again.status_code == 409
        missing = httpx.post(f"{server.url}/api/pipelines/runs/{'0' * 32}/cancel")
        assert missing.status_code == 404
        remote.close()
