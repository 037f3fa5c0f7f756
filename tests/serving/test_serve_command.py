"""``opsloop serve`` as users run it: a process that warms its models up, answers, exposes
metrics, and on SIGTERM drains and seals its prediction log before exiting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

import opsloop
from opsloop.serving.predlog import PredictionLog
from tests.conftest import free_port
from tests.serving.conftest import register_two
from tests.serving.conftest import rows


def test_serve_warms_up_answers_and_drains_on_sigterm(
    weak_model: Any, strong_model: Any, cancer: Any
) -> None:
    client = opsloop.Client()  # the test's embedded store under OPSLOOP_HOME
    register_two(client, weak_model, strong_model, cancer)
    client.deployments.deploy("cancer-clf@2", name="clf")
    client.close()
    port = free_port()
    cli = str(Path(sys.executable).with_name("opsloop"))
    server = subprocess.Popen(
        [cli, "serve", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        answer = httpx.post(f"{url}/v1/deployments/clf/predict", json={"records": rows(cancer, 2)})
        assert answer.status_code == 200 and answer.json()["model"] == "cancer-clf@2"
        assert 'opsloop_predict_requests_total{deployment="clf"' in httpx.get(f"{url}/metrics").text
    finally:
        server.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises SIGTERM for the process's own handler
        assert server.wait(30) in (0, -signal.SIGTERM)
    folder = Path(os.environ["OPSLOOP_HOME"]) / "predictions"
    assert list(folder.glob("*.journal")) == []  # sealed into Parquet on the way out
    log = PredictionLog(folder)
    assert log.predictions("clf")["request_id"].tolist() == [answer.json()["request_id"]]
    log.close()
