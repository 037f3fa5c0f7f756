"""The ``MonitorBackend`` contract through ``client.monitors``, in-process (SQLite and
PostgreSQL) and over HTTP against a live server: the same answers, the same error classes, and
nothing changed by a refused request. Every abstract method of the contract is reached by some
test here (``test_every_contract_method_has_a_conformance_test``).

A server's scheduler checks a new monitor once by itself (its first check is due at creation)
and then not before ``every_seconds``; :func:`settle` waits for that check so it cannot race the
traffic a test sends next, and the assertions on a monitor's runs name the checks the test made.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.monitoring.backend import MonitorBackend
from tests.monitoring.test_monitors import send
from tests.monitoring.test_monitors import setup as deploy_cancer
from tests.monitoring.test_monitors import shifted
from tests.serving.conftest import COLUMNS
from tests.serving.contract import Recorder
from tests.serving.contract import covers
from tests.serving.contract import uncovered

WINDOW = {"by": "count", "size": 60, "min_rows": 30}
DRIFT = {"name": "drift", "metric": "drift_share", "threshold": 0.5, "channels": [{"type": "log"}]}
# a retraining policy whose pipeline does not exist: the alert starts a loop run (recorded at
# the check, the same on both backends) that a server's scheduler then fails at once
RETRAIN = {"pipeline": "tests.monitoring.no_such_module:retrain", "on": ["drift"]}


@pytest.fixture
def monitors(client: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``client.monitors`` over a recorder of its backend: the test must reach every contract
    method it names with ``@covers``."""
    sdk = client.monitors
    recorder = Recorder(sdk._backend, MonitorBackend)
    sdk._backend = recorder
    failed_before = request.session.testsfailed
    yield sdk
    if request.session.testsfailed == failed_before:  # a failed test reached less: say so once
        missing = recorder.missing(getattr(request.function, "covers", frozenset()))
        assert not missing, f"named in @covers, never reached: {sorted(missing)}"


def settle(client: Any, name: str) -> None:
    """Over HTTP, wait for the server scheduler's own first check of monitor ``name`` (an empty
    window, stored as ``no_data``); in-process nothing checks by itself."""
    if not client.settings.is_remote:
        return
    deadline = time.monotonic() + 20
    while not client.monitors.runs(name):
        assert time.monotonic() < deadline, "the server's scheduler never checked the monitor"
        time.sleep(0.05)


def test_every_contract_method_has_a_conformance_test() -> None:
    assert uncovered(globals(), MonitorBackend) == set()


@covers("create_monitor", "get_monitor", "list_monitors", "delete_monitor")
def test_monitors_are_created_listed_refused_and_deleted(
    client: Any, monitors: Any, cancer: pd.DataFrame, weak_model: Any, strong_model: Any,
    tmp_path: Path,
) -> None:  # fmt: skip
    # deployment "cancer" serves v2
    deploy_cancer(client, cancer, weak_model, strong_model, tmp_path)
    client.deployments.deploy("cancer-clf@1", name="other")
    created = monitors.create("watch", "cancer", "cancer@1", target="target", window=WINDOW)
    assert (created.name, created.deployment, created.reference, created.enabled) == (
        "watch", "cancer", "cancer@1", True,
    )  # fmt: skip
    assert created.columns == [*COLUMNS, "prediction"]
    assert created.spec.target == "target" and created.spec.window.size == 60
    assert created.baseline["metrics"]["accuracy"] > 0.85  # v2 scored on the reference
    # next_run_at is the scheduler's bookkeeping: a server's moves on once it checks
    same = {"exclude": {"next_run_at"}}
    assert monitors.get("watch").model_dump(**same) == created.model_dump(**same)
    monitors.create("on-other", "other", "cancer@1", stattest="psi")
    assert monitors.get("on-other").spec.stattest == "psi"

    with pytest.raises(Conflict, match="monitor 'watch' already exists"):
        monitors.create("watch", "cancer", "cancer@1")
    with pytest.raises(NotFound, match="deployment 'ghost'"):
        monitors.create("m", "ghost", "cancer@1")
    with pytest.raises(NotFound):
        monitors.create("m", "cancer", "cancer@9")
    with pytest.raises(InvalidInput, match="target 'label' is not a column"):
        monitors.create("m", "cancer", "cancer@1", target="label")
    with pytest.raises(InvalidInput, match="features not in cancer@1: nope"):
        monitors.create("m", "cancer", "cancer@1", features=["nope"])
    with pytest.raises(InvalidInput, match="invalid monitor"):  # refused before it is sent
        monitors.create("m", "cancer", "cancer@1", window={"size": 0})

    assert [m.name for m in monitors.list()] == ["on-other", "watch"]  # by name, nothing added
    assert [m.name for m in monitors.list("cancer")] == ["watch"]
    assert monitors.list("ghost") == []
    for call in (monitors.get, monitors.delete):
        with pytest.raises(NotFound, match="monitor 'm' does not exist"):
            call("m")
    monitors.delete("on-other")
    assert [m.name for m in monitors.list()] == ["watch"]
    with pytest.raises(NotFound, match="monitor 'on-other' does not exist"):
        monitors.get("on-other")


@covers(
    "create_monitor", "check_monitor", "list_runs", "get_run", "list_alerts", "acknowledge_alert",
    "resolve_alert", "loop_status", "list_loop_runs", "delete_monitor",
)  # fmt: skip
def test_checks_alerts_and_the_loop(
    client: Any, monitors: Any, cancer: pd.DataFrame, weak_model: Any, strong_model: Any,
    tmp_path: Path,
) -> None:  # fmt: skip
    deploy_cancer(client, cancer, weak_model, strong_model, tmp_path)
    monitor = monitors.create(
        "watch", "cancer", "cancer@1", window=WINDOW, rules=[DRIFT], retrain=RETRAIN
    )
    settle(client, "watch")
    for call in (monitors.check, monitors.runs):
        with pytest.raises(NotFound, match="monitor 'ghost' does not exist"):
            call("ghost")
    with pytest.raises(NotFound, match="monitor run 'nope' does not exist"):
        monitors.run("nope")

    empty = monitors.check("watch")
    assert (empty.monitor, empty.status, empty.rows, empty.alerts) == ("watch", "no_data", 0, [])
    (status,) = monitors.loop_status("cancer")
    assert (status["monitor"], status["stage"], status["loop"]) == ("watch", "watching", None)
    assert status["last_check"]["status"] == "no_data" and status["open_alerts"] == []
    assert monitors.loop_runs() == [] and monitors.alerts() == []

    send(client, shifted(cancer, 60))
    alarm = monitors.check("watch")
    assert (alarm.status, alarm.rows, len(alarm.alerts), len(alarm.loops)) == (
        "alerting", 60, 1, 1,
    )  # fmt: skip
    assert alarm.metrics["drift_share"] >= 0.5 and alarm.report is not None
    assert {"mean radius", "worst area"} <= set(alarm.report["drifted_columns"])
    (alert,) = monitors.alerts(status="open")
    assert (alert.id, alert.monitor, alert.deployment, alert.rule, alert.status, alert.count) == (
        alarm.alerts[0], "watch", "cancer", "drift", "firing", 1,
    )  # fmt: skip
    assert alert.deliveries["log"]["status"] == "delivered"
    again = monitors.check("watch")
    assert again.status == "alerting" and again.alerts == []  # the open alert counts it
    assert monitors.alerts(monitor="watch", deployment="cancer")[0].count == 2

    runs = monitors.runs("watch")  # newest first, without their reports
    assert [r.id for r in runs[:3]] == [again.id, alarm.id, empty.id]
    assert all(r.report is None for r in runs)
    assert [r.id for r in monitors.runs("watch", limit=1)] == [again.id]
    detail = monitors.run(alarm.id)
    assert (detail.id, detail.status, detail.rows, detail.alerts) == (
        alarm.id, "alerting", 60, alarm.alerts,
    )  # fmt: skip
    assert detail.report == alarm.report

    (loop_run,) = monitors.loop_runs("cancer")  # the alert started one retraining
    assert (loop_run.id, loop_run.monitor, loop_run.deployment, loop_run.alert_id) == (
        alarm.loops[0], "watch", "cancer", alert.id,
    )  # fmt: skip
    assert loop_run.history[0]["stage"] == "triggered"  # a server's scheduler walks it on
    assert monitors.loop_runs("other") == [] and len(monitors.loop_runs(limit=1)) == 1
    (status,) = monitors.loop_status()
    assert [a["id"] for a in status["open_alerts"]] == [alert.id]
    assert status["loop"]["id"] == loop_run.id and status["last_check"]["status"] == "alerting"

    with pytest.raises(InvalidInput, match="status must be"):
        monitors.alerts(status="burning")
    for call in (monitors.acknowledge, monitors.resolve):
        with pytest.raises(NotFound, match="alert 'zzzz' does not exist"):
            call("zzzz")
    acked = monitors.acknowledge(alert.id[:8])  # a unique prefix will do
    assert (acked.id, acked.status, acked.acknowledged_by) == (
        alert.id, "acknowledged", monitor.created_by,
    )  # fmt: skip
    assert monitors.alerts(status="firing") == []
    assert [a.id for a in monitors.alerts(status="acknowledged")] == [alert.id]
    assert [a.id for a in monitors.alerts(status="open")] == [alert.id]
    resolved = monitors.resolve(alert.id)
    assert (resolved.status, resolved.resolved_by) == ("resolved", monitor.created_by)
    for call in (monitors.acknowledge, monitors.resolve):
        with pytest.raises(InvalidInput, match="already resolved"):
            call(alert.id)
    assert monitors.alerts(status="open") == []
    assert [a.status for a in monitors.alerts(status="resolved")] == ["resolved"]

    monitors.delete("watch")  # its checks, alerts and loop runs go with it
    assert monitors.alerts() == [] and monitors.loop_runs() == [] and monitors.loop_status() == []
    with pytest.raises(NotFound):
        monitors.run(alarm.id)
    with pytest.raises(NotFound):
        monitors.acknowledge(alert.id)


@covers("create_monitor", "list_references", "rebaseline", "revert_reference", "check_monitor")
def test_references_are_rebaselined_and_reverted(
    client: Any, monitors: Any, cancer: pd.DataFrame, weak_model: Any, strong_model: Any,
    tmp_path: Path,
) -> None:  # fmt: skip
    deploy_cancer(client, cancer, weak_model, strong_model, tmp_path)  # "cancer" serves v2
    monitor = monitors.create("watch", "cancer", "cancer@1", target="target", window=WINDOW)
    settle(client, "watch")
    (first,) = monitors.references("watch")
    assert (first.number, first.action, first.reference, first.model, first.current) == (
        1, "created", "cancer@1", "cancer-clf@2", True,
    )  # fmt: skip
    assert first.created_by == monitor.created_by
    assert first.metrics == monitor.baseline["metrics"]
    moved = pd.DataFrame(shifted(cancer, 100, seed=7))
    moved["target"] = cancer.loc[cancer[COLUMNS].sample(100, random_state=7).index, "target"].values
    moved.to_csv(tmp_path / "moved.csv", index=False)
    client.data.add(str(tmp_path / "moved.csv"), name="cancer-moved")
    client.data.push("cancer-moved@1")

    entry = monitors.rebaseline("watch", "cancer-moved@1", reason="the scanner was recalibrated")
    assert (entry.number, entry.action, entry.reference, entry.model, entry.reason) == (
        2, "rebaselined", "cancer-moved@1", "cancer-clf@2", "the scanner was recalibrated",
    )  # fmt: skip
    assert entry.current and entry.created_by == monitor.created_by and entry.loop_id is None
    assert monitors.get("watch").reference == "cancer-moved@1"
    send(client, shifted(cancer, 60))
    assert monitors.check("watch").metrics["dataset_drift"] == 0  # the shift is the reference

    with pytest.raises(NotFound, match="monitor 'ghost' does not exist"):
        monitors.references("ghost")
    with pytest.raises(NotFound, match="monitor 'ghost' does not exist"):
        monitors.rebaseline("ghost", "cancer@1")
    with pytest.raises(NotFound):
        monitors.rebaseline("watch", "cancer@9")
    pd.DataFrame(shifted(cancer, 50)).to_csv(tmp_path / "unlabelled.csv", index=False)
    client.data.add(str(tmp_path / "unlabelled.csv"), name="unlabelled")
    client.data.push("unlabelled@1")
    with pytest.raises(InvalidInput, match="target 'target' is not a column of unlabelled@1"):
        monitors.rebaseline("watch", "unlabelled@1")
    with pytest.raises(NotFound, match="no reference entry 9"):
        monitors.revert("watch", to=9)
    with pytest.raises(InvalidInput, match="already the current"):
        monitors.revert("watch", to=2)
    with pytest.raises(InvalidInput, match="invalid revert"):  # refused before it is sent
        monitors.revert("watch", to=0)
    assert [e.number for e in monitors.references("watch")] == [2, 1]  # nothing changed

    back = monitors.revert("watch")  # the one before the current one
    assert (back.number, back.action, back.reference, back.model, back.current) == (
        3, "reverted", "cancer@1", "cancer-clf@2", True,
    )  # fmt: skip
    same = {"exclude": {"next_run_at"}}
    assert monitors.get("watch").model_dump(**same) == monitor.model_dump(**same)  # as it was
    history = monitors.references("watch")
    assert [(e.number, e.current) for e in history] == [(3, True), (2, False), (1, False)]
    again = monitors.revert("watch", to=2, reason="the recalibration stays")
    assert (again.number, again.reference, again.reason) == (
        4, "cancer-moved@1", "the recalibration stays",
    )  # fmt: skip
