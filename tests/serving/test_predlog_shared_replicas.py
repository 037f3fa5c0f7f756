"""Three ``opsloop serve`` replicas, each with its own home (as on three hosts), sharing one
PostgreSQL schema, one moto S3 bucket and one Redis Stream: traffic over all three, one replica
SIGKILLed mid-way and its disk removed, a rollout judged by whichever replica leads, on every
replica's rows; every acknowledged prediction is in the log, once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import opsloop
from opsloop.config import Settings
from opsloop.serving.predlog import PredictionReader
from opsloop.serving.predlog_shared import shared_log
from tests.conftest import free_port
from tests.serving.conftest import register_two
from tests.serving.conftest import rows
from tests.serving.test_predlog_shared import REDIS_URL
from tests.serving.test_predlog_shared import stream_key  # noqa: F401 - a fixture
from tests.serving.test_workers import _wait_healthy

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]
MIN_SAMPLES = 30  # more candidate answers than any one replica gives: a verdict needs them all
PER_REPLICA = MIN_SAMPLES - 1


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return f'"{value}"'


def test_three_replicas_one_log_one_verdict(
    pg_url: str,
    s3_blob_url: tuple[str, dict[str, Any]],
    stream_key: str,  # noqa: F811 - the fixture
    tmp_path: Path,
    weak_model: Any,
    strong_model: Any,
    cancer: Any,
) -> None:
    blob_url, options = s3_blob_url
    shared = {"database_url": pg_url, "blob_url": blob_url, "prediction_stream": REDIS_URL,
              "prediction_stream_key": stream_key}  # fmt: skip
    settings = Settings(home=tmp_path / "admin", storage_options=options, **shared)
    client = opsloop.Client(settings=settings)
    assert client.deployments.list() == []  # the schema made, before the replicas start
    cli = str(Path(sys.executable).with_name("opsloop"))
    replicas: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    for n in range(3):
        home = tmp_path / f"host{n}"
        home.mkdir()
        lines = [f"{k} = {_toml(v)}" for k, v in shared.items()]
        (home / "opsloop.toml").write_text(
            "\n".join([*lines, f"storage_options = {_toml(options)}"])
        )
        port = free_port()
        env = {**os.environ, "OPSLOOP_HOME": str(home)}
        server = subprocess.Popen([cli, "serve", "--port", str(port)], env=env, cwd=home)
        replicas.append((f"http://127.0.0.1:{port}", server, home))
    acknowledged: list[str] = []
    candidate_answers = [0, 0, 0]
    try:
        register_two(client, weak_model, strong_model, cancer)  # while the replicas start
        client.deployments.deploy("cancer-clf@1", name="clf")
        for url, server, _ in replicas:
            _wait_healthy(url, server)
        client.deployments.rollout(
            "cancer-clf@2", name="clf", steps=[{"set_weight": 100}, {"analysis": True}],
            checks=[{"metric": "error_rate", "max": 0.05, "min_samples": MIN_SAMPLES}],
        )  # fmt: skip
        body = {"records": rows(cancer)}
        alive = [0, 1, 2]
        deadline = time.monotonic() + 45
        with httpx.Client(timeout=10) as http:
            while client.deployments.rollout_status("clf").status == "running":
                assert time.monotonic() < deadline, client.deployments.rollout_status("clf")
                if len(acknowledged) >= 30 and 2 in alive:  # mid-way: no chance to seal
                    replicas[2][1].send_signal(signal.SIGKILL)
                    replicas[2][1].wait(10)
                    shutil.rmtree(replicas[2][2])  # and its disk gone with it
                    alive.remove(2)
                ready = [n for n in alive if candidate_answers[n] < PER_REPLICA]
                if not ready:  # every replica gave its share: the verdict needs them all
                    time.sleep(0.2)
                for n in ready:
                    answer = http.post(f"{replicas[n][0]}/v1/deployments/clf/predict", json=body)
                    assert answer.status_code == 200, answer.text
                    acknowledged.append(answer.json()["request_id"])
                    candidate_answers[n] += answer.json()["model"] == "cancer-clf@2"
        rollout = client.deployments.rollout_status("clf")
        assert rollout.status == "succeeded", rollout
        verdict = rollout.analyses[-1]
        assert verdict.verdict == "pass"
        # counted on every replica's rows: no one replica answered that many
        assert verdict.window["requests"] >= MIN_SAMPLES > max(candidate_answers)
    finally:
        for _, server, _ in replicas:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
                server.wait(60)
        client.close()
    assert not (tmp_path / "host2").exists()
    reader_home = tmp_path / "reader"
    reader = PredictionReader(
        reader_home, shared_log(Settings(home=reader_home, storage_options=options, **shared))
    )
    logged = list(reader.requests("clf")["request_id"])
    assert len(logged) == len(set(logged))  # no row counted twice
    assert sorted(logged) == sorted(acknowledged)  # every acknowledged prediction, no other
