"""Import speed of `opsloop import mlflow` on a 10,000-run MLflow SQLite store.

The store is built fast: MLflow's own SqlAlchemyStore creates the schema (its migrations), then
the rows (runs, tags, 5 params, 5 metrics x 10 steps a run, latest_metrics) go in with
``executemany``, as MLflow's tables define them. Timed: the `opsloop import mlflow` command into
a fresh embedded store, then the same command again (idempotent: it copies nothing).

The peer is what a user would otherwise script: MlflowClient copying runs into another MLflow
SQLite store (create_run, one log_batch with the params, tags and every metric point,
set_terminated). It is timed on a sample (--peer-runs, 300 by default: at MLflow's pace a full
10,000 would take many minutes) and compared as runs per second.

    .venv/bin/python bench/mlflow_import.py [--runs 10000] [--peer-runs 300]
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

PARAMS, METRICS, STEPS = 5, 5, 10


def build_store(path: Path, runs: int) -> list[str]:
    """An MLflow SQLite store with ``runs`` finished runs in one experiment; their ids."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    store = SqlAlchemyStore(f"sqlite:///{path}", str(path.parent / "mlruns"))
    experiment_id = int(store.create_experiment("bench"))
    store.engine.dispose()
    ids = [uuid.uuid4().hex for _ in range(runs)]
    start = 1_700_000_000_000
    with sqlite3.connect(path) as db:
        db.executemany(
            "insert into runs (run_uuid, name, source_type, source_name, entry_point_name, "
            "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
            "artifact_uri, experiment_id) values (?, ?, 'LOCAL', '', '', 'bench', 'FINISHED', "
            "?, ?, '', 'active', ?, ?)",
            [
                (run_id, f"run-{i}", start + i, start + i + 500,
                 f"{path.parent}/mlruns/{experiment_id}/{run_id}/artifacts", experiment_id)
                for i, run_id in enumerate(ids)
            ],
        )  # fmt: skip
        db.executemany(
            "insert into tags (key, value, run_uuid) values (?, ?, ?)",
            [(k, v, r) for r in ids for k, v in (("mlflow.runName", "r"), ("mlflow.user", "b"))],
        )
        db.executemany(
            "insert into params (key, value, run_uuid) values (?, ?, ?)",
            [(f"p{j}", str(j * 0.1), r) for r in ids for j in range(PARAMS)],
        )
        db.executemany(
            "insert into metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "values (?, ?, ?, ?, ?, 0)",
            [
                (f"m{j}", 1.0 / (s + 1) + j, start + s, r, s)
                for r in ids for j in range(METRICS) for s in range(STEPS)
            ],
        )  # fmt: skip
        db.executemany(
            "insert into latest_metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "values (?, ?, ?, ?, ?, 0)",
            [
                (f"m{j}", 0.1 + j, start + STEPS - 1, r, STEPS - 1)
                for r in ids
                for j in range(METRICS)
            ],
        )
    return ids


def time_opsloop(store: Path, home: Path) -> float:
    env = {**os.environ, "OPSLOOP_HOME": str(home)}
    env.pop("OPSLOOP_SERVER_URL", None)
    command = [str(Path(sys.executable).with_name("opsloop")), "import", "mlflow",
               "--tracking-uri", f"sqlite:///{store}", "--json"]  # fmt: skip
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"opsloop import failed: {done.stderr.strip()}")
    return elapsed


def time_mlflow_copy(store: Path, ids: list[str], target: Path) -> float:
    """MlflowClient copying ``ids`` (params, tags, every metric point) into a fresh store."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric
    from mlflow.entities import Param
    from mlflow.entities import RunTag

    source = MlflowClient(f"sqlite:///{store}")
    dest = MlflowClient(f"sqlite:///{target}")
    experiment = dest.create_experiment("bench")
    began = time.perf_counter()
    for run_id in ids:
        run = source.get_run(run_id)
        metrics = [
            Metric(key, m.value, m.timestamp, m.step)
            for key in run.data.metrics
            for m in source.get_metric_history(run_id, key)
        ]
        new = dest.create_run(experiment, start_time=run.info.start_time)
        dest.log_batch(
            new.info.run_id,
            metrics=metrics,
            params=[Param(k, v) for k, v in run.data.params.items()],
            tags=[RunTag(k, v) for k, v in run.data.tags.items()],
        )
        dest.set_terminated(new.info.run_id, "FINISHED", end_time=run.info.end_time)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--peer-runs", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-import-") as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        ids = build_store(folder / "mlflow.db", args.runs)
        points = args.runs * METRICS * STEPS
        built = time.perf_counter() - began
        print(f"built an MLflow store: {args.runs:,} runs x {PARAMS} params, {METRICS} metrics "
              f"x {STEPS} steps ({points:,} values) in {built:.1f} s")  # fmt: skip
        first = time_opsloop(folder / "mlflow.db", folder / "home")
        again = time_opsloop(folder / "mlflow.db", folder / "home")
        peer_ids = ids[: args.peer_runs]
        peer = time_mlflow_copy(folder / "mlflow.db", peer_ids, folder / "copy.db")
    ours, theirs = args.runs / first, len(peer_ids) / peer
    print(f"opsloop import mlflow: {first:.1f} s for {args.runs:,} runs = {ours:,.0f} runs/s "
          f"({points / first:,.0f} metric values/s)")  # fmt: skip
    print(f"second import (copies nothing): {again:.1f} s")
    print(f"MlflowClient copy into an MLflow store: {peer:.1f} s for {len(peer_ids):,} runs = "
          f"{theirs:,.1f} runs/s")  # fmt: skip
    print(f"ratio (runs/s, opsloop / MLflow client): {ours / theirs:.1f}x")


if __name__ == "__main__":
    main()
