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

Each tool runs in its own child process (started by this script, one after the other), so
neither pays for the other's imports: with MLflow's thousands of modules loaded, every garbage
collection in the process slows down. Each line prints both times and the ratio (MLflow time /
opsloop time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
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
    from opsloop import Client

    client = Client(database_url=f"sqlite:///{folder / 'ops.db'}", blob_url=str(folder / "blobs"))
    exp = client.set_experiment("bench")
    run_id = client.create_run(exp.experiment_id).info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        from opsloop.registry.package import write_package

        write_package(model, Path(tmp) / "pkg", input_example=X.head())
        client.log_artifacts(run_id, Path(tmp) / "pkg", "model")
    client.end_run(run_id)
    return client, run_id


# -- mlflow ----------------------------------------------------------------------------------------
def mlflow_setup(folder: Path, model: Any, X: Any) -> tuple[Any, str, str]:
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.create_experiment("bench", artifact_location=(folder / "mlartifacts").as_uri())
    mlflow.set_experiment("bench")
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", input_example=X.head())
    return MlflowClient(uri, uri), run.info.run_id, info.model_uri


def run_opsloop(folder: Path, versions: int, resolves: int, loads: int) -> dict[str, float]:
    model, X = train()
    row = X.head(1)
    client, run_id = opsloop_setup(folder, model, X)
    client.models.create("bench")
    out = {
        "register": timed(
            lambda: [client.models.register("bench", run_id=run_id) for _ in range(versions)]
        )
    }
    assert client.models.get("bench").latest_version == versions
    client.models.set_alias(f"bench@{versions}", "champion")
    out["resolve"] = timed(
        lambda: [client.models.version("bench@champion") for _ in range(resolves)]
    )

    def load() -> Any:
        return client.models.load("bench@champion").predict(row)

    out["prediction"] = float(load()[0])
    out["load"] = statistics.median(timed(load) for _ in range(loads))
    return out


def run_mlflow(folder: Path, versions: int, resolves: int, loads: int) -> dict[str, float]:
    import mlflow.pyfunc

    model, X = train()
    row = X.head(1)
    client, run_id, model_uri = mlflow_setup(folder, model, X)
    client.create_registered_model("bench")
    out = {
        "register": timed(
            lambda: [
                client.create_model_version("bench", source=model_uri, run_id=run_id)
                for _ in range(versions)
            ]
        )
    }
    client.set_registered_model_alias("bench", "champion", str(versions))
    out["resolve"] = timed(
        lambda: [client.get_model_version_by_alias("bench", "champion") for _ in range(resolves)]
    )

    def load() -> Any:
        return mlflow.pyfunc.load_model("models:/bench@champion").predict(row)

    out["prediction"] = float(load()[0])
    out["load"] = statistics.median(timed(load) for _ in range(loads))
    return out


def _child(tool: str, folder: Path, args: argparse.Namespace) -> dict[str, float]:
    """One tool's scenarios in a fresh process, so neither pays for the other's imports."""
    command = [
        sys.executable, __file__, "--tool", tool, "--folder", str(folder),
        "--versions", str(args.versions), "--resolves", str(args.resolves),
        "--loads", str(args.loads),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{tool} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Smaller sizes (a smoke run).")
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--resolves", type=int, default=10_000)
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--tool", choices=["opsloop", "mlflow"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.versions, args.resolves, args.loads = 50, 500, 5
    warnings.filterwarnings("ignore")
    if args.tool:
        runner = run_opsloop if args.tool == "opsloop" else run_mlflow
        print(json.dumps(runner(args.folder, args.versions, args.resolves, args.loads)))
        return
    from importlib.metadata import version

    print(f"opsloop vs mlflow {version('mlflow')}, {os.cpu_count()} cores", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="opsloop-bench-registry-"))
    (tmp / "opsloop").mkdir(), (tmp / "mlflow").mkdir()
    ours = _child("opsloop", tmp / "opsloop", args)
    peer = _child("mlflow", tmp / "mlflow", args)
    assert ours["prediction"] == peer["prediction"]  # same model, same answer
    report(
        f"1. register {args.versions:,} versions of a logged model",
        ours["register"],
        peer["register"],
    )
    report(f"2. resolve an alias {args.resolves:,} times", ours["resolve"], peer["resolve"])
    report("3. load champion + predict one row (median)", ours["load"], peer["load"])
    print("\nscenario | opsloop s | mlflow s | ratio")
    for name, ours_s, peer_s in RESULTS:
        print(f"{name} | {ours_s:.4f} | {peer_s:.4f} | {peer_s / ours_s:.1f}x")


if __name__ == "__main__":
    main()
