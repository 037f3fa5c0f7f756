"""``opsloop serve --on ray``: the same app as a Ray Serve deployment on a local Ray instance.
Its replicas answer as uvicorn's server does, each writes its own prediction journal under the
shared home (so every acknowledged answer is in the log), and a journal a dead server left is
sealed by them; Ctrl-C drains them. Options that do not fit are refused in one line."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import opsloop
from opsloop.serving.predlog import PredictionLog
from tests.conftest import free_port
from tests.serving.conftest import register_two
from tests.serving.conftest import rows

CLI = str(Path(sys.executable).with_name("opsloop"))
REQUESTS = 40

# A server killed before it sealed its journal: the replicas, opening the log, seal it.
KILLED_SERVER = """
import os, sys
from pathlib import Path
from opsloop.serving.predlog import PredictionLog
log = PredictionLog(Path(sys.argv[1]))
log.log({"request_id": "before", "deployment": "clf", "model": "cancer-clf", "version": 2,
         "ts_ms": 0, "latency_ms": 1.0, "inputs": {}, "outputs": [1], "shadow": False,
         "error": None})
os._exit(0)
"""


def _start(port: int, *args: str, output: Path) -> subprocess.Popen[bytes]:
    with open(output, "wb") as out:
        return subprocess.Popen(
            [CLI, "serve", "--port", str(port), *args], stdout=out, stderr=subprocess.STDOUT
        )


def _wait_ready(url: str, server: subprocess.Popen[bytes], output: Path) -> None:
    """Until the server said it listens (on Ray: every replica is up, not only the first) and
    ``/healthz`` answers."""
    deadline = time.monotonic() + 120
    while True:
        assert server.poll() is None, output.read_text()
        try:
            if (
                "opsloop serve on" in output.read_text()
                and httpx.get(f"{url}/healthz", timeout=2).status_code == 200
            ):
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, output.read_text()
        time.sleep(0.3)


def _predict_all(url: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every body answered, 8 at a time (so both replicas are asked)."""
    with httpx.Client(timeout=30) as http, ThreadPoolExecutor(8) as pool:

        def one(body: dict[str, Any]) -> dict[str, Any]:
            answer = http.post(f"{url}/v1/deployments/clf/predict", json=body)
            assert answer.status_code == 200, answer.text
            return answer.json()  # type: ignore[no-any-return]

        return list(pool.map(one, bodies))


def test_replicas_answer_as_uvicorn_does_and_log_every_answer(
    tmp_path: Path, weak_model: Any, strong_model: Any, cancer: Any
) -> None:
    pytest.importorskip("ray.serve")
    client = opsloop.Client()  # the test's embedded store under OPSLOOP_HOME
    register_two(client, weak_model, strong_model, cancer)
    client.deployments.deploy("cancer-clf@2", name="clf")
    client.close()
    folder = Path(os.environ["OPSLOOP_HOME"]) / "predictions"
    subprocess.run([sys.executable, "-c", KILLED_SERVER, str(folder)], check=True)
    bodies = [{"records": rows(cancer, 2, start=2 * i)} for i in range(REQUESTS)]

    port, output = free_port(), tmp_path / "ray.out"
    server = _start(port, "--on", "ray", "--replicas", "2", output=output)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, server, output)
        on_ray = _predict_all(url, bodies)
        mlflow = httpx.post(f"{url}/invocations", json={"dataframe_records": rows(cancer)})
        assert mlflow.status_code == 200 and "predictions" in mlflow.json()
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C: the replicas drain, Ray stops
        assert server.wait(90) == 0, output.read_text()
    assert "2 replicas on Ray Serve" in output.read_text()

    assert list(folder.glob("*.journal")) == []  # each replica sealed its own on the way out
    log = PredictionLog(folder)
    logged = set(log.predictions("clf")["request_id"])
    log.close()
    acknowledged = {a["request_id"] for a in on_ray} | {mlflow.headers["x-opsloop-request-id"]}
    assert acknowledged | {"before"} == logged
    writers = {
        int(m.group(1))
        for p in (folder / "predictions").rglob("part-predictions-*.parquet")
        if (m := re.match(r"part-predictions-(\d+)-", p.name))
    }
    assert len(writers) == 3 and server.pid not in writers  # two replicas and the killed one

    port, output = free_port(), tmp_path / "uvicorn.out"
    server = _start(port, output=output)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, server, output)
        on_uvicorn = _predict_all(url, bodies)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    assert [a["predictions"] for a in on_ray] == [a["predictions"] for a in on_uvicorn]
    assert {a["model"] for a in on_ray} == {"cancer-clf@2"}


def _refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one line ``opsloop serve ARGS`` is refused with."""
    from opsloop.app.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["serve", *args])
    err = capsys.readouterr().err
    assert exit_.value.code not in (0, None), err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_options_that_do_not_fit_are_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "--replicas must be at least 1" in _refused(capsys, "--on", "ray", "--replicas", "0")
    assert "1 <= MIN <= MAX" in _refused(capsys, "--on", "ray", "--autoscale", "3,1")
    assert "MIN,MAX" in _refused(capsys, "--on", "ray", "--autoscale", "two")
    assert "not both" in _refused(capsys, "--on", "ray", "--replicas", "2", "--autoscale", "1,2")
    assert "add --on ray" in _refused(capsys, "--replicas", "2")
    assert "use --replicas" in _refused(capsys, "--on", "ray", "--workers", "2")
    assert "choose uvicorn or ray" in _refused(capsys, "--on", "k8s")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        assert "choose another --port" in _refused(capsys, "--on", "ray", "--port", port)
    monkeypatch.setitem(sys.modules, "ray.serve", None)  # as where Ray Serve is not installed
    assert "pip install 'opsloop[ray-serve]'" in _refused(capsys, "--on", "ray")
