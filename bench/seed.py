"""Seed opsloop's and MLflow's embedded stores with the same runs, fast, for read benchmarks.

Run ``i`` of ``n`` is named ``run-{i:05d}``, has params ``lr`` and ``depth`` and metrics
``m0..m{k-1}`` (step 0), with ``m0 = i / n`` so that a filter's hit count is known in advance.
Setting up is never what these benchmarks time: opsloop's rows go in through its services in
one transaction; MLflow's are cloned in SQL from a run its own client logged (logging 10,000
runs through MLflow's client takes tens of minutes).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path


# -- data --------------------------------------------------------------------------------------
def metric_values(i: int, n: int, metrics: int) -> dict[str, float]:
    return {
        f"m{k}": (i / n if k == 0 else ((i * 7919 + k * 104729) % 10_007) / 10_007)
        for k in range(metrics)
    }


def populate_opsloop(folder: Path, n: int, metrics: int, name: str = "bench-ui") -> str:
    from opsloop.kernel.timeutil import now_ms
    from opsloop.schema import open_store
    from opsloop.tracking import experiments
    from opsloop.tracking import run_data
    from opsloop.tracking import runs
    from opsloop.tracking.entities import MetricBatch
    from opsloop.tracking.entities import MetricSeries

    store = open_store(f"sqlite:///{folder / 'ops.db'}")
    now = now_ms()
    with store.write() as session:
        exp = experiments.create_experiment(session, name).experiment_id
        for i in range(n):
            run_id = runs.create_run(
                session, exp, run_name=f"run-{i:05d}", start_time=now - (n - i) * 1000
            ).info.run_id
            batch = MetricBatch(
                series={
                    k: MetricSeries(values=[v], steps=[0], timestamps=[now])
                    for k, v in metric_values(i, n, metrics).items()
                }
            )
            run_data.log_batch(
                session,
                run_id,
                metrics=batch,
                params={"lr": str(10 ** -(i % 4)), "depth": str(i % 8)},
            )
            runs.update_run(session, run_id, status="FINISHED", end_time=now)
    store.dispose()
    return exp


def populate_mlflow(folder: Path, n: int, metrics: int, name: str = "bench-ui") -> str:
    from mlflow import MlflowClient
    from mlflow.entities import Metric
    from mlflow.entities import Param

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(name, artifact_location=str(folder / "mlartifacts"))
    template = client.create_run(exp, run_name="template")
    template_id = template.info.run_id
    now = int(time.time() * 1000)
    client.log_batch(
        template_id,
        metrics=[Metric(k, v, now, 0) for k, v in metric_values(0, n, metrics).items()],
        params=[Param("lr", "1"), Param("depth", "0")],
    )
    client.set_terminated(template_id)
    db = sqlite3.connect(folder / "mlflow.db")
    columns = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
    base = dict(
        zip(
            columns,
            db.execute("SELECT * FROM runs WHERE run_uuid = ?", (template_id,)).fetchone(),
            strict=True,
        )
    )
    db.execute("DELETE FROM metrics"), db.execute("DELETE FROM latest_metrics")
    db.execute("DELETE FROM params"), db.execute("DELETE FROM tags"), db.execute("DELETE FROM runs")
    run_rows, metric_rows, param_rows, tag_rows = [], [], [], []
    for i in range(n):
        run_id = uuid.uuid4().hex
        row = dict(
            base,
            run_uuid=run_id,
            name=f"run-{i:05d}",
            start_time=now - (n - i) * 1000,
            end_time=now,
        )
        row["artifact_uri"] = str(folder / "mlartifacts" / run_id)
        run_rows.append(tuple(row[c] for c in columns))
        for k, v in metric_values(i, n, metrics).items():
            metric_rows.append((k, v, now, run_id, 0, 0))
        param_rows += [("lr", str(10 ** -(i % 4)), run_id), ("depth", str(i % 8), run_id)]
        tag_rows.append(("mlflow.runName", f"run-{i:05d}", run_id))
    db.executemany(
        f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        run_rows,
    )
    for table in ("metrics", "latest_metrics"):  # one point per key: history == latest
        db.executemany(
            f"INSERT INTO {table} (key, value, timestamp, run_uuid, step, is_nan)"
            " VALUES (?,?,?,?,?,?)",
            metric_rows,
        )
    db.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", param_rows)
    db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tag_rows)
    db.commit()
    db.close()
    return exp
