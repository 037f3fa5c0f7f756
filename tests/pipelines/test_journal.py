"""The write-behind journal of step records: a step that logs into its own run finds it there,
a long step's run shows up while it runs, a client talking to a server writes through, and a
batch of new runs with one bad record writes none of them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import opsloop
from opsloop.errors import InvalidInput
from opsloop.store.sql import SessionSql
from opsloop.tracking.run_records import NewRun
from opsloop.tracking.run_records import insert_runs
from tests.conftest import LiveServer
from tests.pipelines import example


@pytest.fixture
def client(sqlite_url: str, tmp_path: Path, monkeypatch: Any) -> Iterator[Any]:
    monkeypatch.setenv("OPSLOOP_DATABASE_URL", sqlite_url)  # what get_client() in a step uses
    monkeypatch.setenv("OPSLOOP_BLOB_URL", str(tmp_path / "blobs"))
    c = opsloop.Client(database_url=sqlite_url, blob_url=str(tmp_path / "blobs"))
    yield c
    c.close()


def test_a_step_logs_into_its_own_run(client: Any) -> None:
    result = example.reporting.run(client=client)
    step_run = client.get_run(result.step("self_reporting").run_id)
    assert step_run.data.metrics["progress"] == 1.0 and "duration_s" in step_run.data.metrics
    assert step_run.info.status == "FINISHED"


def test_a_long_steps_run_shows_while_it_runs(client: Any) -> None:
    done: list[Any] = []
    worker = threading.Thread(target=lambda: done.append(example.reporting.run(
        client=client, experiment="slow", seconds=2.0)))  # fmt: skip
    worker.start()
    seen = []
    deadline = time.monotonic() + 1.8
    while time.monotonic() < deadline and not seen:
        try:
            page = client.search_runs("slow", "attributes.status = 'RUNNING'")
            seen = [r for r in page.items if r.data.tags.get("opsloop.step")]
        except LookupError:  # the experiment is not there yet
            pass
        time.sleep(0.1)
    worker.join()
    assert seen and seen[0].info.run_name == "self_reporting"
    assert client.get_run(seen[0].info.run_id).info.status == "FINISHED"


def test_a_client_of_a_server_writes_through(tmp_path: Path) -> None:
    with LiveServer(f"sqlite:///{tmp_path / 'server.db'}", str(tmp_path / "blobs")) as live:
        remote = opsloop.Client(server_url=live.url)
        result = example.registered.run(client=remote, C=1.0)
        again = example.registered.run(client=remote, C=1.0)
        assert all(s.cached for s in again.steps)
        fit = remote.get_run(result.step("fit").run_id)
        assert fit.info.status == "FINISHED" and "duration_s" in fit.data.metrics
        remote.close()


def test_a_bad_record_writes_no_run(client: Any) -> None:
    exp = client.set_experiment("bulk")
    store = client._tracking.store
    good = NewRun("a" * 32, exp.experiment_id, "good", 1, tags={"k": "v"})
    bad = NewRun("b" * 32, exp.experiment_id, "bad", 1, tags={"k": "x" * 9000})  # too long
    with pytest.raises(InvalidInput), store.write() as session:
        insert_runs(SessionSql(session), client._tracking.blobs, [good, bad])
    with pytest.raises(LookupError):
        client.get_run("a" * 32)
    with store.write() as session:
        insert_runs(SessionSql(session), client._tracking.blobs, [good])
    assert client.get_run("a" * 32).data.tags == {"k": "v"}


def test_the_cache_index_is_kept_and_read_again(
    client: Any, sqlite_url: str, tmp_path: Path, monkeypatch: Any
) -> None:
    import subprocess
    import sys

    from opsloop.pipelines import cache_index

    example.training.run(client=client, C=1.0)  # this process now knows the experiment
    code = (
        "import opsloop; from tests.pipelines import example; "
        f"example.training.run(client=opsloop.Client(database_url={sqlite_url!r}, "
        f"blob_url={str(tmp_path / 'blobs')!r}), C=0.25)"
    )
    root = Path(example.__file__).parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, capture_output=True)
    example.CALLS.clear()
    stale = example.training.run(client=client, C=0.25)  # the other process's steps: unseen
    assert stale.step("train").reason.startswith("params changed") and "train" in example.CALLS
    monkeypatch.setattr(cache_index, "KNOWN_FOR_S", 0.0)  # read again: every finished step is seen
    example.CALLS.clear()
    fresh = example.training.run(client=client, C=0.25)
    assert all(s.cached for s in fresh.steps) and example.CALLS == []
