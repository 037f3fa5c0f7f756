"""A returned ``log_metric`` outlives its process: SIGKILL in a tight loop loses no point.

The killed process counts its acknowledged points in a shared mapping (which survives it just
as the journal does), so the test knows exactly which points ``log_metric`` had returned for.
"""

from __future__ import annotations

import mmap
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsloop import Client
from opsloop.config import Settings
from opsloop.config import home_dir
from opsloop.tracking.buffer import MetricBuffer
from opsloop.tracking.entities import MetricBatch
from opsloop.tracking.journal import journal_dir
from tests.conftest import LiveServer

LONG_KEY = "a/key/longer/than/twenty-four/bytes"

KILLED = textwrap.dedent(
    """
    import mmap, sys, opsloop
    from opsloop.tracking.buffer import MetricBuffer
    MetricBuffer.first_slots = 4096  # several full segments before the kill
    target, blobs, ack_path = sys.argv[1:4]
    if target.startswith("http"):
        client = opsloop.Client(server_url=target)
    else:
        client = opsloop.Client(database_url=target, blob_url=blobs)
    run = client.create_run(client.set_experiment("kill").experiment_id, capture_env=False)
    run_id = run.info.run_id
    with open(ack_path, "r+b") as fh:
        acked = memoryview(mmap.mmap(fh.fileno(), 8)).cast("Q")
    print(run_id, flush=True)
    step = 0
    while True:
        client.log_metric(run_id, "m", step * 0.5, step=step)
        client.log_metric(run_id, LONG_KEY, float(-step), step=step)
        step += 1
        acked[0] = step  # both points of this step were acknowledged
    """
).replace("LONG_KEY", repr(LONG_KEY))


@pytest.fixture(params=["local", "http"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where the killed process logs: the SQLite store itself, or a server over it."""
    url = f"sqlite:///{tmp_path / 'k.db'}"
    if request.param == "local":
        yield url
    else:
        with LiveServer(url, str(tmp_path / "server-blobs")) as server:
            yield server.url


def _client(target: str, tmp_path: Path) -> Client:
    if target.startswith("http"):
        return Client(server_url=target)
    return Client(database_url=target, blob_url=str(tmp_path / "blobs"))


def _segments(target: str) -> list[Path]:
    folder = journal_dir(home_dir(), target)
    return sorted(folder.glob("*.mj")) if folder.is_dir() else []


def _kill_mid_loop(script: str, target: str, tmp_path: Path, at_least: int) -> tuple[str, int]:
    """Run ``script`` until it acknowledged ``at_least`` steps, SIGKILL it; (run id, acked)."""
    ack_path = tmp_path / "acked"
    ack_path.write_bytes(bytes(8))
    proc = subprocess.Popen(
        [sys.executable, "-c", script, target, str(tmp_path / "blobs"), str(ack_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = proc.stdout.readline().strip()  # type: ignore[union-attr]
        with open(ack_path, "r+b") as fh, mmap.mmap(fh.fileno(), 8) as shared:
            acked = memoryview(shared).cast("Q")
            deadline = time.monotonic() + 90
            while acked[0] < at_least and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            count = int(acked[0])
            acked.release()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert run_id and count >= at_least, proc.stderr.read()  # type: ignore[union-attr]
    assert proc.returncode == -signal.SIGKILL
    return run_id, count


def test_sigkill_in_a_tight_loop_loses_no_acknowledged_point(target: str, tmp_path: Path) -> None:
    run_id, acked = _kill_mid_loop(KILLED, target, tmp_path, at_least=30_000)
    assert _segments(target), "the killed process left its journal behind"

    client = _client(target, tmp_path)  # adopts the dead process's journal
    history = client.get_metric_history(run_id, "m")
    other = client.get_metric_history(run_id, LONG_KEY)
    client.close()

    assert len(history.steps) >= acked  # every acknowledged point, each exactly once
    assert history.steps == list(range(len(history.steps)))
    assert history.values == [s * 0.5 for s in history.steps]
    assert other.steps == list(range(len(other.steps))) and len(other.steps) >= acked
    assert other.values == [float(-s) for s in other.steps]
    assert _segments(target) == []  # delivered, so deleted


def test_a_replay_of_points_already_delivered_stores_them_once(tmp_path: Path) -> None:
    """A crash between the store's commit and the journal's ``delivered`` mark replays points
    the store already has: the store keeps one row per point, so nothing doubles."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    script = textwrap.dedent(
        """
        import os, signal, sys, opsloop
        client = opsloop.Client(database_url=sys.argv[1], blob_url=sys.argv[2])
        run = client.create_run(client.set_experiment("r").experiment_id, capture_env=False)
        for step in range(1000):
            client.log_metric(run.info.run_id, "m", float(step), step=step)
        client.flush()
        print(run.info.run_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, url, str(tmp_path / "blobs")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    (segment,) = _segments(url)
    with open(segment, "r+b") as fh, mmap.mmap(fh.fileno(), 0) as journal:
        marks = memoryview(journal)[16:32].cast("Q")
        assert marks[0] == marks[1] > 1000  # committed == delivered: 1000 points, 1 key record
        marks[1] = 0  # as if killed after the store committed, before the mark was written
        marks.release()

    client = Client(database_url=url, blob_url=str(tmp_path / "blobs"))
    history = client.get_metric_history(done.stdout.split()[0], "m")
    client.close()
    assert history.steps == list(range(1000))
    assert _segments(url) == []


FORKED = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from opsloop.tracking.buffer import MetricBuffer

    sent = []
    def sink(run_id, batch):
        sent.append([run_id, batch.series["m"].values])

    folder = Path(sys.argv[1])
    buffer = MetricBuffer(sink, journal_dir=folder, interval=3600)
    for i in range(100):
        buffer.add("parent", "m", float(i), i, 1)
    pid = os.fork()
    if pid == 0:
        buffer.add("child", "m", -1.0, 0, 1)
        buffer.flush()
        other = MetricBuffer(sink, journal_dir=folder)  # a new client here: the parent lives
        other.flush()
        print(json.dumps(sent), flush=True)
        os._exit(0)  # no exit hooks: its delivered segment stays on disk
    os.waitpid(pid, 0)
    buffer.add("parent", "m", 100.0, 100, 1)
    buffer.flush()
    print(json.dumps(sent), flush=True)
    """
)


def test_a_forked_child_sends_only_its_own_points(tmp_path: Path) -> None:
    import json

    folder = tmp_path / "journal"
    done = subprocess.run(
        [sys.executable, "-c", FORKED, str(folder)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    child, parent = (json.loads(line) for line in done.stdout.splitlines())
    assert child == [["child", [-1.0]]]
    assert parent == [["parent", [float(i) for i in range(101)]]]

    sent: list[MetricBatch] = []  # what both left on disk is delivered: nothing to resend
    later = MetricBuffer(lambda run_id, batch: sent.append(batch), journal_dir=folder)
    later.flush()
    later.close()
    assert sent == [] and list(folder.iterdir()) == []


def test_full_segments_roll_and_each_key_keeps_its_order(tmp_path: Path) -> None:
    got: dict[tuple[str, str], list[tuple[float, int]]] = {}

    def sink(run_id: str, batch: MetricBatch) -> None:
        for key, series in batch.series.items():
            got.setdefault((run_id, key), []).extend(zip(series.values, series.steps, strict=True))

    buffer = MetricBuffer(sink, journal_dir=tmp_path, interval=3600)
    buffer.first_slots = 64
    keys = [f"k{i}" for i in range(30)] + [LONG_KEY * 3]
    for step in range(200):
        for run in ("r1", "r2"):
            for key in keys:
                buffer.add(run, key, step + 0.25, step, 7)
    assert len(list(tmp_path.glob("*.mj"))) > 4  # sealed segments wait for delivery
    buffer.flush()
    expected = [(step + 0.25, step) for step in range(200)]
    assert got == {(run, key): expected for run in ("r1", "r2") for key in keys}
    buffer.release("r1")
    assert len(list(tmp_path.glob("*.mj"))) == 1  # r2's open segment
    buffer.close()
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_home_keeps_metrics_in_memory_with_one_warning(tmp_path: Path) -> None:
    home = tmp_path / "not-a-folder"
    home.write_text("a file where the home should be")
    settings = Settings(
        home=home, database_url=f"sqlite:///{tmp_path / 'u.db'}", blob_url=str(tmp_path / "b")
    )
    client = Client(settings=settings)
    exp = client.set_experiment("u")
    runs = [client.create_run(exp.experiment_id, capture_env=False).info.run_id for _ in "ab"]
    with pytest.warns(RuntimeWarning, match="kept in memory only") as caught:
        for run_id in runs:
            for step in range(10):
                client.log_metric(run_id, "m", float(step), step=step)
    assert len(caught) == 1
    for run_id in runs:
        assert client.get_metric_history(run_id, "m").steps == list(range(10))
        client.end_run(run_id)
    client.close()
