"""The closed loop on the embedded store: shifted traffic opens a drift alert, the alert starts
one retraining (the labelled traffic exported as a data version, a real pipeline run), the new
version passes the registry gate, is canaried by the rollout controller and promoted, or rolled
back when its canary fails; every step on record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

import opsloop
from opsloop.client import shared_stores
from tests.monitoring.test_monitors import shifted
from tests.serving.conftest import COLUMNS

GATE = {
    "data": "cancer@1",
    "target": "target",
    "latency_samples": 5,
    "rules": [{"metric": "accuracy", "min": 0.8}, {"metric": "f1", "max_regression": 0.05}],
}


def start(tmp_path: Path, cancer: pd.DataFrame, weak: Any, **retrain: Any) -> Any:
    client = opsloop.Client()  # the embedded store: the pipeline's steps open the same one
    client.models.register("cancer-clf", weak, input_example=cancer[COLUMNS].head())
    client.models.set_alias("cancer-clf@1", "champion")
    cancer.to_csv(tmp_path / "cancer.csv", index=False)
    client.data.add(str(tmp_path / "cancer.csv"), name="cancer")
    client.deployments.deploy("cancer-clf@champion", name="cancer")
    policy = {
        "pipeline": "tests.monitoring.loop_pipeline:retrain", "on": ["data-drift"],
        "export_dataset": "cancer-live", "gate_policy": GATE,
        "rollout_steps": [{"set_weight": 50}, {"pause_requests": 5}, {"set_weight": 100}],
        "rollout_checks": [{"metric": "error_rate", "max": 0.05, "min_samples": 5}],
        **retrain,
    }  # fmt: skip
    client.monitors.create(
        "cancer-watch", "cancer", "cancer@1", target="target",
        window={"by": "count", "size": 40, "min_rows": 30}, retrain=policy,
    )  # fmt: skip
    return client


def labelled_shifted_traffic(client: Any, cancer: pd.DataFrame, n: int, seed: int) -> None:
    records = shifted(cancer, n, seed=seed)
    truth = cancer.loc[cancer[COLUMNS].sample(n, random_state=seed).index, "target"].tolist()
    labels = {}
    for i in range(0, n, 5):
        answer = client.deployments.predict("cancer", records[i : i + 5])
        labels[answer["request_id"]] = truth[i : i + 5]
    client.deployments.feedback("cancer", labels)


def canary_traffic(client: Any, cancer: pd.DataFrame, seed: int = 4) -> None:
    """Labelled traffic while the canary takes half of it, at random per request: 40 requests,
    so that the rollout's pause (5 of the candidate's) and checks (5 samples) are met but in
    about one run in ten million (with 20 requests, one in 170: a test that failed by chance)."""
    labelled_shifted_traffic(client, cancer, 200, seed=seed)


def test_drift_retrains_gates_canaries_and_promotes(
    tmp_path: Path, cancer: pd.DataFrame, weak_model: Any
) -> None:
    from opsloop.monitoring import loop

    client = start(tmp_path, cancer, weak_model)
    labelled_shifted_traffic(client, cancer, 100, seed=3)
    scheduler = client.scheduler()
    (check,) = scheduler.tick(wait=True)
    assert check.status == "alerting" and len(check.loops) == 1
    (status,) = client.monitors.loop_status("cancer")
    assert status["stage"] == "rolling_out", status["loop"]["history"]
    run = status["loop"]
    assert run["candidate"] == 2 and run["data_ref"] == "cancer-live@1"
    assert [h["stage"] for h in run["history"]] == [
        "triggered",
        "training",
        "gating",
        "rolling_out",
    ]
    live = client.data.get("cancer-live@1").to_pandas()
    assert len(live) == 100 and set(live.columns) == {*COLUMNS, "target"}
    pipeline_run = client.get_run(run["pipeline_run_id"])
    assert pipeline_run.data.tags["opsloop.trigger"] == f"alert:{run['alert_id']}"
    assert client.models.version("cancer-clf@2").run_id != run["pipeline_run_id"]  # a step's
    assert client.models.get("cancer-clf").aliases["candidate"] == 2

    canary_traffic(client, cancer)
    scheduler.advance_loops(wait=True)
    (done,) = client.monitors.loop_runs("cancer")
    assert done.stage == "promoted", done.history
    deployment = client.deployments.get("cancer")
    assert deployment.policy.stable == 2 and deployment.policy.candidate is None
    assert client.models.get("cancer-clf").aliases["champion"] == 2

    store, _ = shared_stores(client.settings)  # the store the local client writes to
    with store.write() as session:  # the same alert seen again starts nothing
        from opsloop.monitoring.tables import MonitorRow

        monitor = session.query(MonitorRow).one()
        spec = client.monitors.get("cancer-watch").spec
        assert loop.start_loops(session, monitor, spec, [done.alert_id]) == []
    lineage = client.models.lineage("cancer-clf@2")
    assert lineage  # the candidate is linked to the run that made it
    scheduler.stop()
    client.close()


def test_a_failing_canary_is_rolled_back(
    tmp_path: Path, cancer: pd.DataFrame, weak_model: Any
) -> None:
    client = start(
        tmp_path, cancer, weak_model,
        rollout_checks=[{"metric": "latency_p99_ms", "max": 0.0, "min_samples": 3}],
    )  # fmt: skip
    labelled_shifted_traffic(client, cancer, 100, seed=3)
    scheduler = client.scheduler()
    scheduler.tick(wait=True)
    canary_traffic(client, cancer)
    scheduler.advance_loops(wait=True)
    (done,) = client.monitors.loop_runs("cancer")
    assert done.stage == "rolled_back", done.history
    assert "latency_p99_ms" in (done.message or "")
    deployment = client.deployments.get("cancer")
    assert deployment.policy.stable == 1 and deployment.status == "degraded"
    assert client.models.get("cancer-clf").aliases["champion"] == 1
    check = client.monitors.check("cancer-watch")  # the rollback reaches the alert channels
    assert check.metrics["rollbacks"] == 1 and "rolled back: " in (check.message or "")
    open_alerts = client.monitors.alerts(status="open", monitor="cancer-watch")
    (rollback,) = [a for a in open_alerts if a.rule == "rollout-rolled-back"]
    assert rollback.severity == "critical"
    assert rollback.deliveries["log"]["status"] == "delivered"
    assert client.monitors.check("cancer-watch").metrics["rollbacks"] == 0  # counted once
    scheduler.stop()
    client.close()


def test_a_pipeline_that_fails_is_on_record(
    tmp_path: Path, cancer: pd.DataFrame, weak_model: Any
) -> None:
    client = start(tmp_path, cancer, weak_model, pipeline="tests.monitoring.loop_pipeline:nope")
    labelled_shifted_traffic(client, cancer, 60, seed=3)
    scheduler = client.scheduler()
    scheduler.tick(wait=True)
    (done,) = client.monitors.loop_runs("cancer")
    assert done.stage == "failed" and "has no 'nope'" in (done.message or "")
    assert client.deployments.get("cancer").policy.stable == 1
    scheduler.stop()
    client.close()


def test_a_server_closes_the_loop_by_itself(
    live_server: Any, tmp_path: Path, cancer: pd.DataFrame, weak_model: Any
) -> None:
    """Nothing but traffic and labels from outside: the server's scheduler checks the monitor,
    alerts, retrains in its own process (on its own store), and its rollout controller judges
    the canary and promotes."""
    import time

    client = opsloop.Client(server_url=live_server.url)
    client.models.register("cancer-clf", weak_model, input_example=cancer[COLUMNS].head())
    client.models.set_alias("cancer-clf@1", "champion")
    cancer.to_csv(tmp_path / "cancer.csv", index=False)
    client.data.add(str(tmp_path / "cancer.csv"), name="cancer")
    client.data.push("cancer@1")
    client.deployments.deploy("cancer-clf@champion", name="cancer")
    policy = {
        "pipeline": "tests.monitoring.loop_pipeline:retrain", "on": ["data-drift"],
        "export_dataset": "cancer-live", "gate_policy": GATE,
        "rollout_steps": [{"set_weight": 50}, {"pause_requests": 5}, {"set_weight": 100}],
        "rollout_checks": [{"metric": "error_rate", "max": 0.05, "min_samples": 5}],
    }  # fmt: skip
    labelled_shifted_traffic(client, cancer, 100, seed=3)
    client.monitors.create(
        "cancer-watch", "cancer", "cancer@1", target="target", every_seconds=1,
        window={"by": "count", "size": 40, "min_rows": 30}, retrain=policy,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    stage = None
    while time.monotonic() < deadline:
        runs = client.monitors.loop_runs("cancer")
        stage = runs[0].stage if runs else None
        if stage in ("promoted", "rolled_back", "rejected", "failed"):
            break
        if stage == "rolling_out":
            labelled_shifted_traffic(client, cancer, 20, seed=int(time.monotonic()))
        time.sleep(0.5)
    assert stage == "promoted", client.monitors.loop_runs("cancer")[0].history
    assert client.deployments.get("cancer").policy.stable == 2
    assert client.models.get("cancer-clf").aliases["champion"] == 2
    client.close()
