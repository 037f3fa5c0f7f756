"""The loop settles: after the retrained version is promoted, the monitor re-baselines on the data
that version was trained on (recorded, and reversible), the incident's alerts resolve "resolved by
v2", and ``loop status`` says settled with the incident's timeline. Driven end to end with a real
sklearn model: embedded (SDK, CLI) and through a server (REST, the monitor page)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import opsloop
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.identity import os_user
from tests.monitoring.test_loop import GATE
from tests.monitoring.test_loop import canary_traffic
from tests.monitoring.test_loop import labelled_shifted_traffic
from tests.monitoring.test_loop import start
from tests.serving.conftest import COLUMNS

OPSLOOP = str(Path(sys.executable).with_name("opsloop"))
TIMELINE = ["alert fired", "retrain run", "gate", "canary", "promotion", "re-baseline", "resolved"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command, on the same embedded store (the test's OPSLOOP_HOME)."""
    return subprocess.run(
        [OPSLOOP, *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "250"},  # wide enough for the tables
    )  # fmt: skip


def test_promotion_rebaselines_resolves_and_settles(
    tmp_path: Path, cancer: pd.DataFrame, weak_model: Any
) -> None:
    client = start(tmp_path, cancer, weak_model)
    labelled_shifted_traffic(client, cancer, 100, seed=3)
    scheduler = client.scheduler()
    (check,) = scheduler.tick(wait=True)
    assert check.status == "alerting" and len(check.loops) == 1
    (alert,) = client.monitors.alerts(status="open")
    (status,) = client.monitors.loop_status("cancer")
    assert status["stage"] == "rolling_out"  # not settled while the canary runs
    canary_traffic(client, cancer)
    scheduler.advance_loops(wait=True)
    scheduler.stop()
    (done,) = client.monitors.loop_runs("cancer")
    assert done.stage == "promoted", done.history

    # the incident's alert resolved, with why
    (resolved,) = client.monitors.alerts(monitor="cancer-watch")
    assert resolved.id == alert.id and resolved.status == "resolved"
    assert resolved.resolution == "resolved by v2" and resolved.resolved_by == os_user()
    assert client.monitors.alerts(status="open") == []

    # the monitor now compares to the data v2 was trained on, profiled with v2
    history = client.monitors.references("cancer-watch")
    assert [(e.number, e.action, e.reference, e.model, e.current) for e in history] == [
        (2, "rebaselined", "cancer-live@1", "cancer-clf@2", True),
        (1, "created", "cancer@1", "cancer-clf@1", False),
    ]
    assert history[0].loop_id == done.id and history[0].created_by == os_user()
    assert "v2 promoted" in history[0].reason and "cancer-live@1" in history[0].reason
    monitor = client.monitors.get("cancer-watch")
    assert monitor.reference == "cancer-live@1" and monitor.baseline["model"] == "cancer-clf@2"
    assert client.monitors.loop_status("cancer")[0]["stage"] == "settled"  # before any check
    stages = [e.action for e in client.governance.iter_audit(resource=f"loops/{done.id}")]
    assert stages[0] == "loop promoted via retraining-loop"
    assert "loop training via retraining-loop" in stages  # each move audited

    # the same shifted traffic, now served by v2: the check passes
    labelled_shifted_traffic(client, cancer, 100, seed=5)
    after = client.monitors.check("cancer-watch")
    assert after.status == "ok", after.metrics
    assert after.metrics["dataset_drift"] == 0 and after.alerts == []

    # loop status (the real CLI, JSON): settled, with the incident told in order
    shown = cli("loop", "status", "cancer", "--json")
    assert shown.returncode == 0, shown.stderr
    (item,) = json.loads(shown.stdout)
    assert item["stage"] == "settled" and item["open_alerts"] == []
    assert [e["event"] for e in item["timeline"]] == TIMELINE
    assert item["timeline"][-1]["message"].startswith("resolved by v2")
    times = [e["at"] for e in item["timeline"]]
    assert times == sorted(times)
    text = cli("loop", "status", "cancer")
    assert "settled" in text.stdout and "re-baseline" in text.stdout

    # revert: back to the old reference, as a third entry; the CLI shows the history
    reverted = cli("monitors", "revert", "cancer-watch", "--json")
    assert reverted.returncode == 0, reverted.stderr
    entry = json.loads(reverted.stdout)
    assert (entry["number"], entry["action"], entry["reference"]) == (3, "reverted", "cancer@1")
    monitor = client.monitors.get("cancer-watch")
    assert monitor.reference == "cancer@1" and monitor.baseline["model"] == "cancer-clf@1"
    assert [e.number for e in client.monitors.references("cancer-watch")] == [3, 2, 1]
    listed = cli("monitors", "references", "cancer-watch")
    assert (
        listed.returncode == 0 and "reverted" in listed.stdout and "cancer-live@1" in listed.stdout
    )
    drifted = client.monitors.check("cancer-watch")  # the old reference sees the shift again
    assert drifted.metrics["dataset_drift"] == 1 and drifted.alerts == []  # cooling down
    assert client.monitors.loop_status("cancer")[0]["stage"] == "alerting"  # not settled now
    client.monitors.revert("cancer-watch")  # and a revert can be undone
    assert client.monitors.get("cancer-watch").reference == "cancer-live@1"
    client.close()


def test_revert_and_rebaseline_refuse_bad_input(
    tmp_path: Path, cancer: pd.DataFrame, weak_model: Any
) -> None:
    client = start(tmp_path, cancer, weak_model)
    with pytest.raises(InvalidInput, match="nothing to revert to"):
        client.monitors.revert("cancer-watch")
    with pytest.raises(InvalidInput, match="already the current"):
        client.monitors.revert("cancer-watch", to=1)
    with pytest.raises(NotFound, match="no reference entry 7"):
        client.monitors.revert("cancer-watch", to=7)
    with pytest.raises(InvalidInput):
        client.monitors.revert("cancer-watch", to=0)
    with pytest.raises(NotFound):
        client.monitors.rebaseline("cancer-watch", "cancer@9")
    with pytest.raises(NotFound):
        client.monitors.references("nope")
    cancer.drop(columns=["target"]).to_csv(tmp_path / "unlabelled.csv", index=False)
    client.data.add(str(tmp_path / "unlabelled.csv"), name="unlabelled")
    with pytest.raises(InvalidInput, match="target 'target'"):
        client.monitors.rebaseline("cancer-watch", "unlabelled@1")
    entry = client.monitors.rebaseline("cancer-watch", "cancer@1", reason="a fresh look")
    assert (entry.number, entry.reason, entry.model) == (2, "a fresh look", "cancer-clf@1")
    bad = cli("monitors", "revert", "cancer-watch", "--to", "9")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    client.close()


def test_a_server_settles_and_shows_it(
    live_server: Any, tmp_path: Path, cancer: pd.DataFrame, weak_model: Any
) -> None:
    """The server's scheduler closes the loop and settles it; REST and the monitor page show
    the resolved alert, the reference history and the incident, and revert over REST."""
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
        (status,) = client.monitors.loop_status("cancer")
        stage = status["stage"]
        if stage in ("settled", "rolled_back", "rejected", "failed"):
            break
        if stage == "rolling_out":
            labelled_shifted_traffic(client, cancer, 20, seed=int(time.monotonic()))
        time.sleep(0.5)
    assert stage == "settled", status
    assert [e["event"] for e in status["timeline"]] == TIMELINE
    (alert,) = client.monitors.alerts(monitor="cancer-watch", status="resolved")
    assert alert.resolution == "resolved by v2"
    history = client.monitors.references("cancer-watch")
    assert [(e.action, e.reference) for e in history] == [
        ("rebaselined", "cancer-live@1"),
        ("created", "cancer@1"),
    ]
    page = httpx.get(f"{live_server.url}/monitors/cancer-watch", timeout=30)
    assert page.status_code == 200
    assert "settled" in page.text and "resolved by v2" in page.text
    assert 'id="references"' in page.text and "cancer-live@1" in page.text
    assert "/monitors/cancer-watch/references/1/revert" in page.text  # the revert button

    body = httpx.post(
        f"{live_server.url}/api/monitors/cancer-watch/references/revert", json={}, timeout=30
    )
    assert body.status_code == 201, body.text
    assert body.json()["reference"] == "cancer@1" and body.json()["number"] == 3
    assert client.monitors.get("cancer-watch").reference == "cancer@1"
    refused = httpx.post(
        f"{live_server.url}/api/monitors/cancer-watch/references/revert",
        json={"to": True}, timeout=30,
    )  # fmt: skip
    assert refused.status_code == 400
    pressed = httpx.post(f"{live_server.url}/monitors/cancer-watch/references/2/revert", timeout=30)
    assert pressed.status_code in (200, 303)
    assert client.monitors.get("cancer-watch").reference == "cancer-live@1"
    client.close()


def test_an_upgraded_database_gets_each_monitors_first_reference(database_url: str) -> None:
    """Migration 0013 on SQLite and PostgreSQL: a monitor made before it gets entry 1, so it can
    be re-baselined and reverted like a new one; downgrading drops the history again."""
    from sqlalchemy import inspect
    from sqlalchemy import text

    from opsloop.store.database import Store
    from opsloop.store.migrate import downgrade
    from opsloop.store.migrate import upgrade

    store = Store(database_url)
    upgrade(store.engine, "0012_triggers")
    baseline = json.dumps({"reference": "cancer@1", "model": "cancer-clf@1", "task": "x"})
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO monitors VALUES ('m1', 'watch', 'cancer', '{}', '{\"columns\": []}',"
                " :baseline, 1, 0, NULL, 5, 'ana')"
            ),
            {"baseline": baseline},
        )
    upgrade(store.engine)
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT monitor_id, number, action, reference, model, created_by, baseline "
                 "FROM monitor_references")
        ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [
        ("m1", 1, "created", "cancer@1", "cancer-clf@1", "ana", baseline)
    ]
    downgrade(store.engine, "0012_triggers")
    assert "monitor_references" not in inspect(store.engine).get_table_names()
    store.dispose()
