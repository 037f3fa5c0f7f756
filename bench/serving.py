"""Online inference: opsloop's inference server vs MLflow's scoring server, side by side.

    ./dev bench bench/serving.py
    .venv/bin/python bench/serving.py [--seconds 5]

The same scikit-learn pipeline (StandardScaler + LogisticRegression on the bundled breast-cancer
table, 30 float columns) is served by each tool from its own store in a fresh temp folder:
``opsloop serve`` (deployment of a registered version; prediction log and metrics on) and
``mlflow models serve --env-manager local``, one worker each. A load generator in its own
process sends single-row JSON requests over keep-alive connections on loopback (raw asyncio
streams, ~30 µs of client work per request, so the servers are what is measured) at concurrency
1 and 32 for ``--seconds`` each, after a warm-up. Printed per line: requests/s, p50 and p99
latency for both, and the ratios (opsloop over MLflow for throughput, MLflow over opsloop for
p99). A last line measures, in process, what opsloop's router, prediction log and metrics add to
the model's own ``predict`` (the ``LoadedModel`` with its signature check).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
LOADGEN = Path(__file__).with_name("loadgen.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train() -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_breast_cancer(as_frame=True).frame
    X, y = frame.drop(columns=["target"]), frame["target"]
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y), X


def wait_ready(
    url: str, proc: subprocess.Popen, body: dict[str, Any], timeout: float = 180
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.post(url, json=body, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


def start_opsloop(folder: Path, model: Any, X: Any) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, OPSLOOP_HOME=str(folder), OPSLOOP_CAPTURE_ENV="0")
    code = (
        "import pickle, sys, opsloop; model, X = pickle.load(sys.stdin.buffer); "
        "c = opsloop.Client(); c.models.register('bench', model, input_example=X.head()); "
        "c.deployments.deploy('bench@1', name='bench'); c.close()"
    )
    import pickle

    subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps((model, X)), env=env, check=True
    )
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "opsloop"), "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}/v1/deployments/bench/predict"


def start_mlflow(folder: Path, model: Any, X: Any) -> tuple[subprocess.Popen, str]:
    env = dict(
        os.environ,
        MLFLOW_TRACKING_URI=f"sqlite:///{folder / 'mlflow.db'}",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # it execs `uvicorn` by name
    )
    code = (
        "import pickle, sys, mlflow, mlflow.sklearn; model, X = pickle.load(sys.stdin.buffer); "
        "mlflow.set_experiment('bench')\n"
        "with mlflow.start_run() as run:\n"
        "    info = mlflow.sklearn.log_model(model, name='model', input_example=X.head())\n"
        "print(info.model_uri)"
    )
    import pickle

    done = subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps((model, X)), env=env, check=True,
        capture_output=True,
    )  # fmt: skip
    uri = done.stdout.decode().strip().splitlines()[-1]
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "models", "serve", "-m", uri, "-p", str(port), "--env-manager",
         "local", "--workers", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}/invocations"


def load(url: str, body: dict[str, Any], concurrency: int, seconds: float) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, str(LOADGEN), url, json.dumps(body), str(concurrency), str(seconds)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


def added_by_router(model: Any, X: Any) -> tuple[float, float]:
    """p50 of the in-process path with and without router + log + metrics (ms)."""
    import opsloop

    with tempfile.TemporaryDirectory() as tmp:
        client = opsloop.Client(database_url=f"sqlite:///{tmp}/o.db", blob_url=f"{tmp}/blobs")
        client.models.register("bench", model, input_example=X.head())
        client.deployments.deploy("bench@1", name="bench")
        runtime = client.deployments._runtime
        records = X.head(1).to_dict(orient="records")
        loaded = runtime.model(runtime.deployment("bench"), 1)

        def p50(fn: Any, n: int = 2000) -> float:
            for _ in range(100):
                fn()
            times = []
            for _ in range(n):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            return statistics.median(times) * 1000

        full = p50(lambda: runtime.predict("bench", {"records": records}, {}, {}))
        bare = p50(lambda: loaded.predict(records))
        client.close()
    return full, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    model, X = train()
    row = X.head(1).to_dict(orient="records")
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            ours, ours_url = start_opsloop(Path(tmp) / "opsloop", model, X)
            procs.append(ours)
            peer, peer_url = start_mlflow(Path(tmp) / "mlflow", model, X)
            procs.append(peer)
            ours_body, peer_body = {"records": row}, {"dataframe_records": row}
            wait_ready(ours_url, ours, ours_body)
            wait_ready(peer_url, peer, peer_body)
            print(f"single-row requests, {args.seconds:g} s per line, one worker each")
            for concurrency in (1, 32):
                a = load(ours_url, ours_body, concurrency, args.seconds)
                b = load(peer_url, peer_body, concurrency, args.seconds)
                print(
                    f"c={concurrency:<3} opsloop {a['rps']:7.0f} req/s p50 {a['p50']:6.2f} ms "
                    f"p99 {a['p99']:6.2f} ms | mlflow {b['rps']:7.0f} req/s p50 {b['p50']:6.2f} ms "
                    f"p99 {b['p99']:6.2f} ms | throughput {a['rps'] / b['rps']:4.1f}x, "
                    f"p99 {b['p99'] / a['p99']:4.1f}x  (errors {a['errors']}/{b['errors']})"
                )
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(30)
    full, bare = added_by_router(model, X)
    print(f"in process: predict through router + log + metrics p50 {full:.3f} ms, model alone "
          f"{bare:.3f} ms: {full - bare:.3f} ms added")  # fmt: skip


if __name__ == "__main__":
    main()
