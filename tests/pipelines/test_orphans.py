"""A pipeline whose process dies mid-run (killed, out of memory, a server restarted) is closed
as FAILED by the next server or scheduler on its host, with its running steps and its trigger
firing, and can be resumed; runs of live processes and of other hosts are left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsloop.errors import NotFound
from opsloop.kernel.timeutil import now_ms
from opsloop.pipelines import orphans
from opsloop.pipelines.orphans import HEARTBEAT_TAG
from opsloop.pipelines.orphans import LAUNCHER_TAG
from opsloop.pipelines.orphans import close_orphans
from opsloop.pipelines.orphans import this_process
from opsloop.pipelines.reruns import resume
from opsloop.pipelines.runs import describe
from opsloop.workflows.scheduler import Scheduler
from tests.conftest import LiveServer
from tests.pipelines import example

ROOT = Path(__file__).resolve().parents[2]


def _store(client: Any) -> Any:
    from opsloop.client import shared_stores

    return shared_stores(client.settings)[0]


def _start_held_firing(client: Any, tmp_path: Path, marker: Path) -> subprocess.Popen[bytes]:
    """A separate process that fires the trigger 'held' and blocks inside its step."""
    marker.write_text("hold")
    client.triggers.create("held", "tests.pipelines.example:held", "webhook",
                           params={"marker": str(marker)})  # fmt: skip
    script = (
        "import opsloop;"
        f"c = opsloop.Client(database_url={client.settings.database_url!r},"
        f" blob_url={client.settings.blob_url!r});"
        "c.triggers.fire('held', key='k1')"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    deadline = time.monotonic() + 60
    while not Path(f"{marker}.started").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the pipeline never started"
        time.sleep(0.05)
    time.sleep(0.8)  # the step's run is written while it runs (the journal's half-second)
    return proc


def test_a_killed_pipeline_is_closed_with_its_steps_and_firing_then_resumed(
    client: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "hold"
    proc = _start_held_firing(client, tmp_path, marker)
    assert close_orphans(_store(client)) == []  # its process is alive: nothing to close
    running = client.search_runs("pipeline-held", "attributes.status = 'RUNNING'").items
    (run,) = [r for r in running if r.info.parent_run_id is None]
    assert [r.info.run_name for r in running if r.info.parent_run_id] == ["hold"]
    run_id = run.info.run_id
    launcher = run.data.tags[LAUNCHER_TAG]
    assert launcher.split(":")[1] == str(proc.pid)

    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = now_ms()
    time.sleep(1.5)  # the clean-up comes later than the death...
    scheduler = Scheduler(client, _store(client), None, None)
    assert scheduler.close_orphans() == [run_id]
    ended = client.get_run(run_id).info.end_time
    assert ended is not None and ended <= killed_at  # ...but the duration ends at the death
    assert scheduler.close_orphans() == []  # checked again only after a minute

    view = describe(client, run_id)
    assert view.status == "FAILED"
    assert f"pid {proc.pid}" in (view.error or "") and f"resume {run_id}" in (view.error or "")
    steps = {s.name: s for s in view.steps}
    assert steps["load"].status == "FINISHED"
    assert steps["hold"].status == "FAILED" and "ended before it finished" in steps["hold"].error
    (firing,) = client.triggers.firings("held")
    assert firing.status == "failed" and firing.run_id == run_id
    assert "ended before it finished" in (firing.message or "")

    marker.unlink()  # the step no longer blocks: resuming finishes the run's work
    resumed = resume(client, run_id)
    assert resumed.status == "FINISHED"
    assert {s.name: s.cached for s in resumed.steps} == {"load": True, "hold": False}


def test_runs_of_other_hosts_and_unknown_tags_are_left_alone(client: Any) -> None:
    exp = client.set_experiment("elsewhere")
    host_, pid, started = this_process().rsplit(":", 2)
    kept = []
    for launcher in (
        f"another-host:{pid}:{started}",  # liveness cannot be seen from here
        f"{host_.split('/')[0]}/1:{pid}:{started}",  # this host, another container's pids
        "not a launcher tag",
        this_process(),  # this very process, alive
    ):
        run = client.create_run(exp.experiment_id, tags={LAUNCHER_TAG: launcher,
                                                         "opsloop.pipeline": "p"})  # fmt: skip
        kept.append(run.info.run_id)
    gone = client.create_run(exp.experiment_id, tags={
        LAUNCHER_TAG: f"{host_}:{pid}:{int(started) - 5000}", "opsloop.pipeline": "p"})  # fmt: skip
    assert close_orphans(_store(client)) == [gone.info.run_id]  # same pid, another process
    for run_id in kept:
        assert client.get_run(run_id).info.status == "RUNNING"


def test_the_cli_shows_why_a_closed_run_failed(client: Any, tmp_path: Path) -> None:
    exp = client.set_experiment("shown")
    run = client.create_run(exp.experiment_id, run_name="p", tags={
        LAUNCHER_TAG: f"{this_process().rsplit(':', 2)[0]}:{2**22 + 7}:1",
        "opsloop.pipeline": "p"})  # fmt: skip
    assert close_orphans(_store(client)) == [run.info.run_id]
    env = {**os.environ, "OPSLOOP_DATABASE_URL": client.settings.database_url,
           "OPSLOOP_BLOB_URL": client.settings.blob_url, "COLUMNS": "200"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", "from opsloop.app.cli import main; main()",
         "pipelines", "show", run.info.run_id],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ended before it finished" in done.stdout and "FAILED" in done.stdout
    with LiveServer(client.settings.database_url, str(tmp_path / "server-blobs")) as server:
        page = httpx.get(f"{server.url}/pipelines/runs/{run.info.run_id}")
        assert page.status_code == 200 and 'id="run-error"' in page.text
        assert "ended before it finished" in page.text
        view = httpx.get(f"{server.url}/api/pipelines/runs/{run.info.run_id}").json()
        assert view["status"] == "FAILED" and "resume" in view["error"]


def test_a_firing_whose_process_died_before_its_run_began_is_failed(client: Any) -> None:
    from sqlalchemy import update

    from opsloop.pipelines import triggers
    from opsloop.pipelines.orphans import running_in
    from opsloop.pipelines.tables import FiringRow

    store = _store(client)
    client.triggers.create("t", "tests.pipelines.example:held", "webhook")
    host_, _, _ = this_process().rsplit(":", 2)
    with store.write() as session:
        dead, _ = triggers.fire(session, "t", "dead", "webhook")
        alive, _ = triggers.fire(session, "t", "alive", "webhook")
        for firing, launcher in ((dead, f"{host_}:{2**22 + 9}:1"), (alive, this_process())):
            session.execute(update(FiringRow).where(FiringRow.id == firing.id).values(
                status="running", message=running_in(launcher)))  # fmt: skip
    assert close_orphans(store) == []  # no pipeline run had begun
    status = {f.key: f for f in client.triggers.firings("t")}
    assert status["dead"].status == "failed" and "fire the trigger again" in status["dead"].message
    assert status["alive"].status == "running"


def test_firings_left_running_elsewhere_or_after_their_run_are_settled(client: Any) -> None:
    from sqlalchemy import update

    from opsloop.pipelines import triggers
    from opsloop.pipelines.orphans import running_in
    from opsloop.pipelines.tables import FiringRow

    store = _store(client)
    client.triggers.create("t", "tests.pipelines.example:held", "webhook")
    now = int(time.time() * 1000)
    far = "another-host/4026531836:4242:1700000000000"
    exp = client.set_experiment("pipeline-held")
    with store.write() as session:
        firings = {key: triggers.fire(session, "t", key, "webhook")[0].id
                   for key in ("lost", "young", "told", "ending", "failing", "moving")}  # fmt: skip

    def claim(key: str, launcher: str, minutes_ago: float) -> None:
        with store.write() as session:
            session.execute(update(FiringRow).where(FiringRow.id == firings[key]).values(
                status="running", message=running_in(launcher),
                updated_at=now - int(minutes_ago * 60_000)))  # fmt: skip

    def run_of(key: str, status: str, ended_s_ago: float) -> str:
        run = client.create_run(exp.experiment_id, capture_env=False,
                                tags={"opsloop.firing": firings[key]}).info.run_id  # fmt: skip
        if status != "RUNNING":
            client.end_run(run, status)
            with store.write() as session:
                from opsloop.tracking.tables import RunRow

                session.execute(update(RunRow).where(RunRow.id == run).values(
                    end_time=now - int(ended_s_ago * 1000)))  # fmt: skip
        return run

    claim("lost", far, 6)  # another host claimed it six minutes ago; no run ever began
    claim("young", far, 1)  # a minute ago: that host may still be importing the pipeline
    claim("told", far, 30)
    told = run_of("told", "FINISHED", 120)  # its run ended two minutes ago: nobody told it
    claim("ending", far, 30)
    run_of("ending", "FINISHED", 5)  # ended five seconds ago: its process is telling it now
    claim("failing", far, 30)
    failing = run_of("failing", "FAILED", 300)
    claim("moving", far, 30)
    run_of("moving", "RUNNING", 0)  # still running: its heartbeat decides, not the firing
    close_orphans(store)
    status = {f.key: f for f in client.triggers.firings("t")}
    assert status["lost"].status == "failed" and "another-host" in status["lost"].message
    assert "no pipeline run began" in status["lost"].message
    assert status["told"].status == "succeeded" and status["told"].run_id == told
    assert status["failing"].status == "failed" and status["failing"].run_id == failing
    assert {status[k].status for k in ("young", "ending", "moving")} == {"running"}


def test_a_run_elsewhere_is_closed_once_its_heartbeat_is_stale(client: Any) -> None:
    exp = client.set_experiment("far")
    now = int(time.time() * 1000)
    launcher = "another-host/4026531836:4242:1700000000000"

    def run_beating(at: int | None) -> str:
        tags = {LAUNCHER_TAG: launcher, "opsloop.pipeline": "p"}
        if at is not None:
            tags[HEARTBEAT_TAG] = str(at)
        return client.create_run(exp.experiment_id, run_name="p", tags=tags).info.run_id

    stale = run_beating(now - 11 * 60_000)  # silent for eleven minutes
    fresh = run_beating(now - 10_000)  # beat ten seconds ago: still running over there
    unknown = run_beating(None)  # an opsloop before heartbeats: nothing to judge it by
    step = client.create_run(exp.experiment_id, run_name="s", parent_run_id=stale).info.run_id
    assert close_orphans(_store(client)) == [stale]
    view = describe(client, stale)
    assert view.status == "FAILED" and "another-host" in (view.error or "")
    assert "sent no heartbeat for 11 min" in (view.error or "")
    assert client.get_run(step).info.status == "FAILED"
    assert {client.get_run(r).info.status for r in (fresh, unknown)} == {"RUNNING"}


def test_a_running_pipeline_renews_its_heartbeat(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orphans, "HEARTBEAT_S", 0.05)
    marker = tmp_path / "hold"
    marker.write_text("hold")
    finished: dict[str, Any] = {}
    runner = threading.Thread(
        target=lambda: finished.update(run=example.held.run(client=client, marker=str(marker)))
    )
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while True:  # the run's heartbeat moves past its start while its step is held
            assert time.monotonic() < deadline, "the heartbeat was never renewed"
            try:
                running = client.search_runs("pipeline-held", "attributes.status = 'RUNNING'")
            except NotFound:  # the pipeline has not made its experiment yet
                running = None
            parents = [r for r in running.items if not r.info.parent_run_id] if running else []
            if parents and int(parents[0].data.tags[HEARTBEAT_TAG]) > parents[0].info.start_time:
                break
            time.sleep(0.05)
    finally:
        marker.unlink()
        runner.join()
    assert finished["run"].status == "FINISHED"
    beat = int(client.get_run(finished["run"].run_id).data.tags[HEARTBEAT_TAG])
    time.sleep(0.3)  # stopped with the run: no beat after its end
    assert int(client.get_run(finished["run"].run_id).data.tags[HEARTBEAT_TAG]) == beat
