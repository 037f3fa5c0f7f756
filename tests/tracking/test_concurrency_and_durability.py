"""Two processes on one SQLite file, and metrics that survive exit, crash and SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from opsloop import Client

WRITER = textwrap.dedent(
    """
    import sys, opsloop
    client = opsloop.Client(database_url=sys.argv[1], blob_url=sys.argv[2])
    exp = client.set_experiment("shared")
    for r in range(int(sys.argv[3])):
        run = client.create_run(exp.experiment_id, capture_env=False)
        client.log_params(run.info.run_id, {"writer": sys.argv[4], "r": r})
        for step in range(200):
            client.log_metric(run.info.run_id, "loss", step * 0.1, step=step)
        client.set_tag(run.info.run_id, "t", "x")
        client.end_run(run.info.run_id)
    """
)


def test_two_processes_log_to_one_sqlite_store(tmp_path: Path) -> None:
    url, blobs = f"sqlite:///{tmp_path / 'shared.db'}", str(tmp_path / "blobs")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, blobs, "25", str(w)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        assert "locked" not in err
    client = Client(database_url=url, blob_url=blobs)
    runs = client.search_runs("shared", max_results=100).items
    assert len(runs) == 50
    assert all(
        r.info.status == "FINISHED" and r.data.metrics["loss"] == pytest.approx(19.9) for r in runs
    )
    history = client.get_metric_history(runs[0].info.run_id, "loss")
    assert len(history.values) == 200


def _script(body: str, url: str, blobs: str) -> str:
    return textwrap.dedent(
        f"""
        import os, signal, sys, time, opsloop
        client = opsloop.Client(database_url={url!r}, blob_url={blobs!r})
        exp = client.set_experiment("dur")
        run = client.create_run(exp.experiment_id, capture_env=False)
        print(run.info.run_id, flush=True)
        for step in range(5000):
            client.log_metric(run.info.run_id, "m", float(step), step=step)
        """
    ) + textwrap.dedent(body)


@pytest.mark.parametrize(
    "ending",
    [
        "pass  # normal exit without end_run",
        "raise RuntimeError('crash')",
        "os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)",
    ],
)
def test_buffered_metrics_survive_exit_crash_and_sigterm(tmp_path: Path, ending: str) -> None:
    url, blobs = f"sqlite:///{tmp_path / 'd.db'}", str(tmp_path / "blobs")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _script(ending, url, blobs)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 30
    run_id = done.stdout.split()[0]
    history = Client(database_url=url, blob_url=blobs).get_metric_history(run_id, "m")
    assert history.steps == list(range(5000))
    if "SIGTERM" in ending:
        assert done.returncode == -signal.SIGTERM


def test_buffer_retries_when_the_store_is_briefly_unavailable(tmp_path: Path) -> None:
    from opsloop.errors import StoreError
    from opsloop.tracking.buffer import MetricBuffer

    received: list[int] = []
    failures = [1, 1]

    def flaky_sink(run_id: str, batch: object) -> None:
        if failures:
            failures.pop()
            raise StoreError("database restarting")
        received.append(batch.count())  # type: ignore[attr-defined]

    buffer = MetricBuffer(flaky_sink, interval=0.05)
    for i in range(100):
        buffer.add("r", "m", float(i), i, 0)
    deadline = time.monotonic() + 10
    while sum(received) < 100 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sum(received) == 100
    buffer.close()


def test_system_metrics_are_sampled(tmp_path: Path) -> None:
    import opsloop

    with opsloop.start_run(
        log_system_metrics=True, system_metrics_interval=0.2, capture_env=False
    ) as run:
        time.sleep(0.7)
    metrics = opsloop.get_run(run.run_id).data.metrics
    assert metrics["system/memory_used_mb"] > 0
    assert (
        len(
            opsloop.get_client()
            .get_metric_history(run.run_id, "system/cpu_utilization_percentage")
            .values
        )
        >= 2
    )
    assert os.environ.get("OPSLOOP_HOME")
