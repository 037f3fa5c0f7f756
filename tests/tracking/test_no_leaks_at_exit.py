"""The SDK in HTTP mode leaves nothing open at exit: no unclosed-socket ``ResourceWarning``
(reported by Python's development mode) from the fluent API, a client never closed, traces or
data, in a process that ends without any clean-up of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import LiveServer

SCRIPT = """
import opsloop
from opsloop import Client

opsloop.set_experiment("leaks")
with opsloop.start_run():
    opsloop.log_param("a", 1)
    for step in range(5):
        opsloop.log_metric("loss", 1.0 / (step + 1), step=step)
client = Client()  # never closed
run = client.create_run(client.set_experiment("leaks").experiment_id, capture_env=False)
client.log_metric(run.info.run_id, "x", 1.0)
client.end_run(run.info.run_id)
with client.traces.tracer.span("root", kind="chain", input="q") as span:
    span.update(output="a")
client.traces.flush()
client.data.add(__import__("sys").argv[1], name="leak-data", push=True)
print("done")
"""


def test_http_mode_leaves_no_open_socket_at_exit(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("x,y\n1,2\n")
    with LiveServer(f"sqlite:///{tmp_path / 'l.db'}", str(tmp_path / "blobs")) as server:
        env = dict(os.environ, OPSLOOP_HOME=str(tmp_path / "home"), OPSLOOP_SERVER_URL=server.url)
        done = subprocess.run(
            [sys.executable, "-X", "dev", "-W", "always::ResourceWarning", "-c", SCRIPT,
             str(data)],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
    assert done.returncode == 0 and "done" in done.stdout, done.stderr
    assert "ResourceWarning" not in done.stderr, done.stderr
