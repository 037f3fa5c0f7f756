"""Several worker processes: a worker killed under load loses no acknowledged prediction (its
journal is sealed by the next process), and the server keeps answering."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

import opsloop
from opsloop.serving.predlog import PredictionLog
from tests.conftest import free_port
from tests.serving.conftest import register_two
from tests.serving.conftest import rows


def _wait_healthy(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 90
    while True:
        assert server.poll() is None, "opsloop serve exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "opsloop serve did not come up"
        time.sleep(0.2)


def test_a_killed_worker_loses_no_acknowledged_prediction(
    weak_model: Any, strong_model: Any, cancer: Any
) -> None:
    client = opsloop.Client()
    register_two(client, weak_model, strong_model, cancer)
    client.deployments.deploy("cancer-clf@1", name="clf")
    client.close()
    port = free_port()
    cli = str(Path(sys.executable).with_name("opsloop"))
    server = subprocess.Popen([cli, "serve", "--port", str(port), "--workers", "2"])
    url = f"http://127.0.0.1:{port}"
    acknowledged: list[str] = []
    try:
        _wait_healthy(url, server)
        body = {"records": rows(cancer)}
        with httpx.Client(timeout=10) as http:
            for _ in range(40):
                answer = http.post(f"{url}/v1/deployments/clf/predict", json=body)
                assert answer.status_code == 200
                acknowledged.append(answer.json()["request_id"])
        workers = psutil.Process(server.pid).children()
        assert len(workers) >= 2
        os.kill(workers[0].pid, signal.SIGKILL)  # no chance to seal its journal
        deadline = time.monotonic() + 60
        while len(acknowledged) < 80:
            try:
                with httpx.Client(timeout=5) as http:
                    answer = http.post(f"{url}/v1/deployments/clf/predict", json=body)
                if answer.status_code == 200:
                    acknowledged.append(answer.json()["request_id"])
            except httpx.HTTPError:
                pass  # a request to the killed worker was never acknowledged
            assert time.monotonic() < deadline
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    log = PredictionLog(Path(os.environ["OPSLOOP_HOME"]) / "predictions")  # seals the leftovers
    logged = set(log.predictions("clf")["request_id"])
    log.close()
    assert set(acknowledged) <= logged
