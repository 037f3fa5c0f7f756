"""The model registry, opsloop vs MLflow, side by side in one process run.

    ./dev bench bench/registry.py
    .venv/bin/python bench/registry.py --quick

Both tools on their embedded defaults in fresh temp folders (SQLite + local files), with the
same scikit-learn pipeline (StandardScaler + LogisticRegression on the bundled breast-cancer
table) logged once on a finished run by each tool's own logging call. Then:

1. register N versions of that logged model (a metadata write each: ``models.register(name,
   run_id=...)`` vs ``MlflowClient.create_model_version``);
2. resolve the ``champion`` alias M times (``models.version("m@champion")`` vs
   ``get_model_version_by_alias``);
3. load the champion by alias and predict one row, K times (``opsloop.models.load`` vs
   ``mlflow.pyfunc.load_model("models:/m@champion")``), each load a fresh call as a serving
   process or a batch job makes it; the median is reported.

Each line prints both times and the ratio (MLflow time / opsloop time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OPSLOOP_CAPTURE_ENV", "0")  # measure the registry, not start-up capture
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
RESULTS: list[tuple[str, float, float]] = []


def report(name: str, ours: float, peer: float) -> None:
    RESULTS.append((name, ours, peer))
    print(f"{name:<52} opsloop {ours:8.4f}s  mlflow {peer:8.4f}s  ratio {peer / ours:7.1f}x")


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def train() -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_breast_cancer(as_frame=True).frame
    X, y = frame.drop(columns=["target"]), frame["target"]
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y), X


# -- opsloop ---------------------------------------------------------------------------------------
def opsloop_setup(folder: Path, model: Any, X: Any) -> tuple[Any, str]:
    import opsloop
    from opsloop import Client

    client = Client(database_url=f"sqlite:///{folder / 'ops.db'}", blob_url=str(folder / "blobs"))
    exp = client.set_experiment("bench")
    run_id = client.create_run(exp.experiment_id).info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        from opsloop.registry.package import write_package

        write_package(model, Path(tmp) / "pkg", input_example=X.head())
        client.log_artifacts(run_id, Path(tmp) / "pkg", "model")
    client.end_run(run_id)
    assert opsloop is not None
    return client, run_id


# -- mlflow ----------------------------------------------------------------------------------------
def mlflow_setup(folder: Path, model: Any, X: Any) -> tuple[Any, str, str]:
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment("bench")
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", input_example=X.head())
    return MlflowClient(uri, uri), run.info.run_id, info.model_uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Smaller sizes (a smoke run).")
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--resolves", type=int, default=10_000)
    parser.add_argument("--loads", type=int, default=20)
    args = parser.parse_args()
    if args.quick:
        args.versions, args.resolves, args.loads = 50, 500, 5
    warnings.filterwarnings("ignore")
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn

    import opsloop.models
    import opsloop.registry.local_backend  # noqa: F401  (import both tools before timing)

    print(f"opsloop vs mlflow {mlflow.__version__}, {os.cpu_count()} cores", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="opsloop-bench-registry-"))
    model, X = train()
    row = X.head(1)
    client, run_id = opsloop_setup(tmp, model, X)
    mclient, mrun_id, model_uri = mlflow_setup(tmp, model, X)

    n = args.versions
    client.models.create("bench")
    mclient.create_registered_model("bench")
    ours = timed(lambda: [client.models.register("bench", run_id=run_id) for _ in range(n)])
    peer = timed(
        lambda: [
            mclient.create_model_version("bench", source=model_uri, run_id=mrun_id)
            for _ in range(n)
        ]
    )
    assert client.models.get("bench").latest_version == n
    report(f"1. register {n:,} versions of a logged model", ours, peer)

    client.models.set_alias(f"bench@{n}", "champion")
    mclient.set_registered_model_alias("bench", "champion", str(n))
    m = args.resolves
    ours = timed(lambda: [client.models.version("bench@champion") for _ in range(m)])
    peer = timed(lambda: [mclient.get_model_version_by_alias("bench", "champion") for _ in range(m)])
    report(f"2. resolve an alias {m:,} times", ours, peer)

    def ours_load() -> Any:
        return client.models.load("bench@champion").predict(row)

    def peer_load() -> Any:
        return mlflow.pyfunc.load_model("models:/bench@champion").predict(row)

    assert list(ours_load()) == list(peer_load())  # same model, same answer
    ours_times = [timed(ours_load) for _ in range(args.loads)]
    peer_times = [timed(peer_load) for _ in range(args.loads)]
    report(
        "3. load champion + predict one row (median)",
        statistics.median(ours_times),
        statistics.median(peer_times),
    )

    print("\nscenario | opsloop s | mlflow s | ratio")
    for name, ours_s, peer_s in RESULTS:
        print(f"{name} | {ours_s:.4f} | {peer_s:.4f} | {peer_s / ours_s:.1f}x")


if __name__ == "__main__":
    main()
