"""Monitors on a real deployment: drift, measured and estimated quality over windows of the
prediction log, alerts with deduplication, cool-down, a real webhook receiver (up and down),
acknowledgement, resolution; through the SDK in local mode and over HTTP."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from tests.conftest import free_port
from tests.serving.conftest import COLUMNS
from tests.serving.conftest import register_two


class Receiver:
    """A local HTTP server that records the JSON bodies POSTed to it."""

    def __init__(self, port: int | None = None) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port or 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def sample(cancer: pd.DataFrame, n: int, seed: int = 1) -> list[dict[str, Any]]:
    """Rows drawn at random: the table's own order is not (its first rows lean malignant)."""
    return cancer[COLUMNS].sample(n, random_state=seed).to_dict(orient="records")


def shifted(cancer: pd.DataFrame, n: int, seed: int = 2) -> list[dict[str, Any]]:
    frame = cancer[COLUMNS].sample(n, random_state=seed)
    frame["mean radius"] += 8
    frame["worst area"] *= 3
    frame["mean texture"] += 10
    return frame.to_dict(orient="records")


def setup(client: Any, cancer: pd.DataFrame, weak: Any, strong: Any, tmp_path: Path) -> None:
    register_two(client, weak, strong, cancer)
    cancer.to_csv(tmp_path / "cancer.csv", index=False)
    client.data.add(str(tmp_path / "cancer.csv"), name="cancer")
    client.data.push("cancer@1")  # with a server: the server profiles it
    client.deployments.deploy("cancer-clf@2", name="cancer")


def send(client: Any, records: list[dict[str, Any]], batch: int = 5) -> list[str]:
    ids = []
    for i in range(0, len(records), batch):
        ids.append(client.deployments.predict("cancer", records[i : i + batch])["request_id"])
    return ids


def test_drift_alert_dedup_webhook_ack_resolve(
    client: Any, cancer: pd.DataFrame, weak_model: Any, strong_model: Any, tmp_path: Path
) -> None:
    setup(client, cancer, weak_model, strong_model, tmp_path)
    receiver = Receiver()
    try:
        monitor = client.monitors.create(
            "cancer-watch", "cancer", "cancer@1", target="target",
            window={"by": "count", "size": 30, "min_rows": 50},
            rules=[
                {"name": "data-drift", "metric": "dataset_drift", "threshold": 1,
                 "severity": "critical",
                 "channels": [{"type": "webhook", "url": receiver.url}, {"type": "log"},
                              {"type": "prometheus"}]},
                {"name": "estimated-accuracy", "metric": "cbpe_accuracy", "op": "<",
                 "threshold": 0.5},
            ],
        )  # fmt: skip
        assert monitor.columns == [*COLUMNS, "prediction"]
        assert monitor.baseline["metrics"]["accuracy"] > 0.85

        send(client, sample(cancer, 150))
        calm = client.monitors.check("cancer-watch")
        assert calm.status == "ok" and calm.rows == 150 and calm.alerts == []
        assert calm.metrics["dataset_drift"] == 0.0 and calm.metrics["error_rate"] == 0.0
        assert calm.metrics["cbpe_accuracy"] > 0.8 and "accuracy" not in calm.metrics

        send(client, shifted(cancer, 150))
        alarm = client.monitors.check("cancer-watch")
        assert alarm.status == "alerting" and len(alarm.alerts) == 1
        assert alarm.metrics["dataset_drift"] == 1.0
        assert {"mean radius", "worst area"} <= set(alarm.report["drifted_columns"])
        assert receiver.received and receiver.received[0]["alert"]["rule"] == "data-drift"
        alert = client.monitors.alerts(status="open")[0]
        assert alert.deliveries[f"webhook:{receiver.url}"]["status"] == "delivered"
        assert alert.deliveries["log"]["status"] == "delivered"

        again = client.monitors.check("cancer-watch")
        assert again.alerts == []  # deduplicated: the open alert counts the repeat
        (alert,) = client.monitors.alerts(status="open")
        assert alert.count == 2 and len(receiver.received) == 1

        acked = client.monitors.acknowledge(alert.id[:8])
        assert acked.status == "acknowledged" and acked.acknowledged_by
        resolved = client.monitors.resolve(alert.id)
        assert resolved.status == "resolved"
        with pytest.raises(InvalidInput, match="already resolved"):
            client.monitors.resolve(alert.id)
        cooling = client.monitors.check("cancer-watch")
        assert cooling.alerts == [] and "cooling down" in (cooling.message or "")
        runs = client.monitors.runs("cancer-watch")
        # newest first; with a server its scheduler also checked the empty window at creation
        assert [r.status for r in runs][:4] == ["alerting", "alerting", "alerting", "ok"]
        detail = client.monitors.run(alarm.id)
        assert detail.report and detail.alerts == alarm.alerts
        status = client.monitors.loop_status("cancer")
        assert status[0]["stage"] == "watching" and status[0]["last_check"]["rows"] == 150
        if client.settings.is_remote:
            text = httpx.get(f"{client.settings.server_url}/metrics").text
            assert 'opsloop_alert_firing{deployment="cancer",monitor="cancer-watch"' in text
            page = httpx.get(
                f"{client.settings.server_url}/api/monitor-runs/{alarm.id}/report.html"
            )
            assert page.status_code == 200 and page.text.count("<svg") == 5
    finally:
        receiver.close()


def test_bad_monitor_definitions_are_refused(
    client: Any, cancer: pd.DataFrame, weak_model: Any, strong_model: Any, tmp_path: Path
) -> None:
    setup(client, cancer, weak_model, strong_model, tmp_path)
    with pytest.raises(NotFound, match="deployment 'nope'"):
        client.monitors.create("m", "nope", "cancer@1")
    with pytest.raises(NotFound):
        client.monitors.create("m", "cancer", "cancer@9")
    with pytest.raises(InvalidInput, match="unknown stattest 'kss'"):
        client.monitors.create("m", "cancer", "cancer@1", stattest="kss")
    with pytest.raises(InvalidInput, match=r"retrain\.on names unknown rules: drift"):
        client.monitors.create("m", "cancer", "cancer@1",
                               retrain={"pipeline": "x:y", "on": ["drift"]})  # fmt: skip
    with pytest.raises(InvalidInput, match="webhook channel needs an http"):
        client.monitors.create("m", "cancer", "cancer@1", rules=[
            {"name": "r", "metric": "drift_share", "threshold": 0.5,
             "channels": [{"type": "webhook", "url": "ftp://x"}]}])  # fmt: skip
    with pytest.raises(InvalidInput, match="target 'label' is not a column"):
        client.monitors.create("m", "cancer", "cancer@1", target="label")
    client.monitors.create("m", "cancer", "cancer@1")
    from opsloop.errors import Conflict

    with pytest.raises(Conflict, match="already exists"):
        client.monitors.create("m", "cancer", "cancer@1")


def test_empty_window_and_a_webhook_that_is_down(
    sqlite_url: str, cancer: pd.DataFrame, weak_model: Any, strong_model: Any, tmp_path: Path
) -> None:
    import opsloop
    from opsloop.client import shared_stores
    from opsloop.monitoring import alerts
    from opsloop.monitoring import services

    client = opsloop.Client(database_url=sqlite_url, blob_url=str(tmp_path / "blobs"))
    setup(client, cancer, weak_model, strong_model, tmp_path)
    port = free_port()
    client.monitors.create(
        "watch", "cancer", "cancer@1",
        rules=[{"name": "drift", "metric": "drift_share", "threshold": 0.5,
                "channels": [{"type": "webhook", "url": f"http://127.0.0.1:{port}/hook"}]}],
    )  # fmt: skip
    empty = client.monitors.check("watch")
    assert empty.status == "no_data" and "no verdict" in (empty.message or "")
    assert "drift_share" not in empty.metrics and empty.alerts == []
    send(client, shifted(cancer, 60))
    run = client.monitors.check("watch")
    (alert_id,) = run.alerts
    (alert,) = client.monitors.alerts(status="open")
    state = alert.deliveries[f"webhook:http://127.0.0.1:{port}/hook"]
    assert state["status"] == "failed" and state["attempts"] == 1
    assert "ConnectError" in state["error"]
    store, _ = shared_stores(client.settings)  # the store the local client writes to
    with store.read() as session:
        assert alerts.due_deliveries(session, now=0) == []  # backing off
        assert [a.id for a in alerts.due_deliveries(session, now=state["next_at"])] == [alert_id]
    receiver = Receiver(port)
    try:
        services.deliver_alerts(store, [alert_id])
        (alert,) = client.monitors.alerts(status="open")
        assert alert.deliveries[f"webhook:http://127.0.0.1:{port}/hook"]["status"] == "delivered"
        assert receiver.received[0]["alert"]["id"] == alert_id
    finally:
        receiver.close()
        client.close()


def test_windows_read_the_log_in_time_order(tmp_path: Path) -> None:
    from opsloop.monitoring.entities import Window
    from opsloop.monitoring.windows import read_window
    from opsloop.serving.predlog import PredictionLog

    log = PredictionLog(tmp_path / "predictions")
    base = 1_700_000_000_000
    for i, offset in enumerate([5, 1, 3, 2, 4, 0]):  # written out of order
        row = {"request_id": f"r{i}", "deployment": "d", "model": "m", "version": 1,
               "ts_ms": base + offset * 1000, "latency_ms": 1.0, "shadow": False,
               "error": None, "inputs": {"records": [{"x": offset}]},
               "outputs": [offset]}  # fmt: skip
        log.log(row)
    log.flush()
    log.log({"request_id": "late", "deployment": "d", "model": "m", "version": 1,
             "ts_ms": base + 2500, "latency_ms": 1.0, "shadow": False, "error": None,
             "inputs": {"records": [{"x": 2.5}]}, "outputs": [2.5]})  # fmt: skip
    sliding = read_window(log, "d", Window(by="count", size=3), now_ms=base + 10_000,
                          checked_until=None)  # fmt: skip
    assert sliding is not None and list(sliding.features["x"]) == [3, 4, 5]
    tumbling = Window(by="time", size=4, mode="tumbling")
    now = base + 8_500  # the last complete 4-second period is [base+4s, base+8s)
    first = read_window(log, "d", tumbling, now_ms=now, checked_until=None)
    assert first is not None and first.start is not None and first.end is not None
    assert all(first.start <= base + x * 1000 < first.end for x in first.features["x"])
    assert read_window(log, "d", tumbling, now_ms=now, checked_until=first.end) is None
    counted = read_window(log, "d", Window(by="count", size=4, mode="tumbling"),
                          now_ms=now, checked_until=None)  # fmt: skip
    assert counted is not None and list(counted.features["x"]) == [0, 1, 2, 2.5]
    log.close()
