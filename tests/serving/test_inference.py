"""The inference endpoint on a live server: input shapes, 4xx answers that name the problem,
canary and sticky A/B routing, shadow copies that never reach the caller, traffic changes
without a restart, ground truth joined by request id, Prometheus metrics, and a prediction log
that keeps what it acknowledged when its process is killed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsloop import Client
from tests.conftest import LiveServer
from tests.serving.conftest import COLUMNS
from tests.serving.conftest import register_two
from tests.serving.conftest import rows


@pytest.fixture
def served(
    sqlite_url: str, tmp_path: Path, weak_model: Any, strong_model: Any, cancer: Any
) -> Iterator[tuple[Client, str]]:
    with LiveServer(sqlite_url, str(tmp_path / "blobs")) as server:
        client = Client(server_url=server.url)
        register_two(client, weak_model, strong_model, cancer)
        client.deployments.deploy("cancer-clf@1", name="clf")
        server.app.state.opsloop.serving.policy_ttl = 0.2  # traffic changes show up fast
        yield client, server.url
        client.close()


def _predict(url: str, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/deployments/clf/predict", json=body, **kwargs)


def test_shapes_errors_metrics_and_feedback(served: tuple[Client, str], cancer: Any) -> None:
    client, url = served
    frame = cancer[COLUMNS].head(3)
    records = _predict(url, {"records": rows(cancer, 3)}).json()
    assert records["model"] == "cancer-clf@1" and len(records["predictions"]) == 3
    columns = _predict(url, {"columns": {c: frame[c].tolist() for c in COLUMNS}}).json()
    split = _predict(url, {"dataframe_split": json.loads(frame.to_json(orient="split"))}).json()
    assert columns["predictions"] == split["predictions"] == records["predictions"]

    wrong_type = _predict(url, {"records": [{**rows(cancer)[0], "mean radius": "big"}]})
    assert wrong_type.status_code == 422
    assert "mean radius" in wrong_type.json()["error"]["message"]
    missing = _predict(url, {"records": [{"mean radius": 1.0}]})
    assert missing.status_code == 422 and "mean texture" in missing.json()["error"]["message"]
    assert _predict(url, {"rows": []}).status_code == 422
    malformed = httpx.post(f"{url}/v1/deployments/clf/predict", content=b"{not json")
    assert malformed.status_code == 400 and "not valid JSON" in malformed.text
    huge = httpx.post(f"{url}/v1/deployments/clf/predict", content=b"x" * (11 * 1024 * 1024))
    assert huge.status_code == 413
    assert httpx.post(f"{url}/v1/deployments/nope/predict", json={"records": []}).status_code == 404

    request_id = _predict(url, {"records": rows(cancer)}, headers={"X-Request-Id": "r-1"}).json()
    assert request_id["request_id"] == "r-1"
    fed = httpx.post(f"{url}/v1/deployments/clf/feedback", json={"request_id": "r-1", "label": 0})
    assert fed.json() == {"accepted": 1}
    assert httpx.post(f"{url}/v1/deployments/clf/feedback", json={"label": 1}).status_code == 422
    logged = client.deployments.predictions("clf")
    assert len(logged) == 4  # the four answered calls; refused ones are not logged
    assert logged.set_index("request_id").loc["r-1", "label"] == "0"

    metrics = httpx.get(f"{url}/metrics").text
    assert 'opsloop_predict_requests_total{deployment="clf",status="ok",version="1"} 4.0' in metrics
    assert (
        'opsloop_predict_requests_total{deployment="clf",status="invalid",version="1"} 2.0'
        in metrics
    )
    assert (
        'opsloop_predict_latency_seconds_bucket{deployment="clf",le="0.00025",version="1"}'
        in metrics
    )


def test_canary_ab_and_shadow_routing(
    served: tuple[Client, str], cancer: Any, other_columns_model: Any
) -> None:
    client, url = served
    body = {"records": rows(cancer)}
    client.deployments.deploy("cancer-clf@2", name="clf", canary=100)
    time.sleep(0.3)  # the server reads the new policy within its TTL, without a restart
    assert {_predict(url, body).json()["model"] for _ in range(5)} == {"cancer-clf@2"}
    client.deployments.set_traffic("clf", 0)
    time.sleep(0.3)
    assert {_predict(url, body).json()["model"] for _ in range(5)} == {"cancer-clf@1"}

    client.deployments.deploy("cancer-clf@2", name="clf", ab=50, sticky={"header": "X-User-Id"})
    time.sleep(0.3)
    seen: dict[str, set[str]] = {}
    for user in [f"user-{i}" for i in range(30)] * 3:
        answer = _predict(url, body, headers={"X-User-Id": user}).json()
        seen.setdefault(user, set()).add(answer["model"])
    assert all(len(models) == 1 for models in seen.values())  # sticky per user
    sides = [next(iter(models)) for models in seen.values()]
    assert 5 <= sides.count("cancer-clf@2") <= 25  # both sides get users

    client.models.register(
        "cancer-clf",
        other_columns_model,
        input_example=cancer[["mean radius", "worst area"]].head(),
    )
    client.deployments.rollback("clf")
    client.deployments.deploy("cancer-clf@3", name="clf", shadow=True)  # fails on every copy
    time.sleep(0.3)
    answers = [_predict(url, body, headers={"X-Request-Id": f"s-{i}"}) for i in range(5)]
    assert all(a.status_code == 200 and a.json()["model"] == "cancer-clf@1" for a in answers)
    deadline = time.monotonic() + 10
    while True:
        logged = client.deployments.predictions("clf")
        shadows = logged[logged["shadow"] & logged["request_id"].str.startswith("s-")]
        if len(shadows) == 5 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(shadows) == 5 and shadows["outputs"].eq("null").all()
    assert all("mean area" in error for error in shadows["error"])
    assert (shadows["version"] == 3).all()
    metrics = httpx.get(f"{url}/metrics").text
    assert (
        'opsloop_shadow_requests_total{deployment="clf",status="error",version="3"} 5.0' in metrics
    )


def test_acknowledged_predictions_survive_a_killed_process(tmp_path: Path) -> None:
    folder = tmp_path / "predictions"
    code = f"""
import os, sys
from pathlib import Path
from opsloop.serving.predlog import PredictionLog
log = PredictionLog(Path({str(folder)!r}), interval=3600)
for i in range(50):
    log.log({{"request_id": f"r{{i}}", "deployment": "d", "model": "m", "version": 1,
             "ts_ms": 1795000000000 + i, "latency_ms": 0.1, "inputs": {{"x": i}},
             "outputs": [i % 2], "shadow": False, "error": None}})
log.label("d", "r7", 1)
print("acknowledged", flush=True)
os.kill(os.getpid(), 9)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == -9 and "acknowledged" in done.stdout
    from opsloop.serving.predlog import PredictionLog

    log = PredictionLog(folder)  # a restart: the dead process's journal is sealed to Parquet
    assert list(folder.glob("*.journal")) != [] and list(folder.glob("*.sealed")) == []
    assert len(list((folder / "predictions" / "deployment=d").glob("date=*/*.parquet"))) == 1
    frame = log.predictions("d")
    assert len(frame) == 50 and frame.set_index("request_id").loc["r7", "label"] == "1"
    log.close()


def test_traffic_changes_under_load_drop_no_request(
    served: tuple[Client, str], cancer: Any
) -> None:
    import threading

    client, url = served
    body = {"records": rows(cancer)}
    statuses: list[int] = []
    models: set[str] = set()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                answer = http.post(f"{url}/v1/deployments/clf/predict", json=body)
                statuses.append(answer.status_code)
                if answer.status_code == 200:
                    models.add(answer.json()["model"])

    sender = threading.Thread(target=load)
    sender.start()
    try:
        client.deployments.deploy("cancer-clf@2", name="clf", canary=50)
        time.sleep(0.5)
        client.deployments.promote("clf")  # switch: v2 takes all traffic
        time.sleep(0.5)
        client.deployments.deploy("cancer-clf@1", name="clf")  # and back
        time.sleep(0.5)
    finally:
        stop.set()
        sender.join(10)
    assert len(statuses) > 20 and set(statuses) == {200}
    assert models == {"cancer-clf@1", "cancer-clf@2"}
