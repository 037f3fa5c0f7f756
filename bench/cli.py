"""Everyday commands as a user types them, opsloop vs MLflow's CLI (issue 22, "Everyday speed").

    ./dev bench bench/cli.py
    .venv/bin/python bench/cli.py [--repeat 5] [--only models,serve]

Every figure is a whole process, started the way a shell starts it (``opsloop models show ...``),
from exec to exit (or, for the servers, to their first prediction answered: wall time and the
server's own CPU seconds by then, as others' load inflates the first), the median of
``--repeat`` runs after one untimed run (with Python's bytecode cached, as in a user's install,
under the bench folder when the environment sets ``PYTHONDONTWRITEBYTECODE``). Both tools work
on their embedded defaults in fresh temp folders seeded once, untimed, by a child process: an
experiment of 5 runs, a scikit-learn pipeline (StandardScaler + LogisticRegression, breast
cancer, 30 columns) logged by each tool's own ``log_model`` and registered as 3 versions with a
``champion`` alias; for opsloop also the training table as a data version, a deployment of the
champion and a monitor whose window holds 10,000 scored rows (10,000 single-row requests,
labelled).

``log_model`` is timed inside a process that has just trained the model, in an active run (what a
training script pays for the call: the model library's imports are part of it, scikit-learn's
and the store's are not), and as the whole script. Where MLflow has no such command the MLflow
column is ``-``. Targets (issue 22, an idle 2-core machine): listing and show commands <= 0.4 s,
``log_model`` <= 0.5 s, ``serve`` ready <= 2 s, ``monitors check`` of a 10,000-row window <= 1 s.
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

BIN = Path(sys.executable).parent
MODEL = "bench-clf"
MONITOR = "bench-watch"
WINDOW_ROWS = 10_000
RESULTS: list[tuple[str, float, float | None, str]] = []

# -- seeding (each in its own process, untimed) -----------------------------------------------
TRAIN = """
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

frame = load_breast_cancer(as_frame=True).frame
X, y = frame.drop(columns=["target"]), frame["target"]
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
"""

SEED_OPSLOOP = (
    TRAIN
    + """
from pathlib import Path

import opsloop

FOLDER = Path(FOLDER)

client = opsloop.get_client()
opsloop.set_experiment("bench")
for i in range(5):
    with opsloop.start_run(run_name=f"trial-{i}"):
        opsloop.log_params({"C": 10.0 ** (i - 2), "max_iter": 500})
        for step in range(20):
            opsloop.log_metric("loss", 1.0 / (step + 1 + i), step=step)
        opsloop.log_metric("accuracy", 0.9 + i / 100)
with opsloop.start_run(run_name="model") as run:
    opsloop.log_model(model, "model", input_example=X.head())
for _ in range(3):
    opsloop.models.register(MODEL, run_id=run.info.run_id)
client.models.set_alias(f"{MODEL}@3", "champion")
client.models.set_alias(f"{MODEL}@2", "challenger")
frame.to_csv(FOLDER / "train.csv", index=False)
reference = client.data.add(FOLDER / "train.csv", "bench-data").version.ref
client.deployments.deploy(f"{MODEL}@champion")
client.monitors.create(MONITOR, MODEL, reference, target="target", every_seconds=3600,
                       window={"by": "count", "size": ROWS, "min_rows": 30})
rows = X.sample(ROWS, replace=True, random_state=0)
labels = {}
for (_, row), truth in zip(rows.iterrows(), y.loc[rows.index], strict=True):
    labels[client.deployments.predict(MODEL, [row.to_dict()])["request_id"]] = int(truth)
client.deployments.feedback(MODEL, labels)
client.deployments.close()
X.head(3).to_json(FOLDER / "rows.json", orient="records")
X.head(3).to_csv(FOLDER / "rows.csv", index=False)
"""
)

SEED_MLFLOW = (
    TRAIN
    + """
import mlflow

mlflow.set_tracking_uri(URI)
mlflow.set_experiment("bench")
for i in range(5):
    with mlflow.start_run(run_name=f"trial-{i}"):
        mlflow.log_params({"C": 10.0 ** (i - 2), "max_iter": 500})
        for step in range(20):
            mlflow.log_metric("loss", 1.0 / (step + 1 + i), step=step)
        mlflow.log_metric("accuracy", 0.9 + i / 100)
with mlflow.start_run(run_name="model"):
    info = mlflow.sklearn.log_model(model, name="model", input_example=X.head())
client = mlflow.MlflowClient()
for _ in range(3):
    mlflow.register_model(info.model_uri, MODEL)
client.set_registered_model_alias(MODEL, "champion", "3")
"""
)

LOG_MODEL = {
    "opsloop": TRAIN
    + """
import time
import opsloop
with opsloop.start_run():
    start = time.perf_counter()
    opsloop.log_model(model, "model", input_example=X.head())
    took = time.perf_counter() - start
print(took)
""",
    "mlflow": TRAIN
    + """
import time
import mlflow
mlflow.set_tracking_uri(URI)
with mlflow.start_run():
    start = time.perf_counter()
    mlflow.sklearn.log_model(model, name="model", input_example=X.head())
    took = time.perf_counter() - start
print(took)
""",
}


def python_source(body: str, **names: object) -> str:
    return "".join(f"{k} = {v!r}\n" for k, v in names.items()) + body


def run_python(source: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(BIN / "python"), "-c", source], env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return done.stdout


# -- timing -------------------------------------------------------------------------------------
def whole_process(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return took


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_cpu(pid: int) -> float | None:
    """CPU seconds (user + sys) used so far by process ``pid`` and its live descendants (MLflow
    serves from a uvicorn child), read from Linux's /proc; None where there is none."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        child = int(entry.parent.name)
        parents[child] = int(fields[1])
        used[child] = (int(fields[11]) + int(fields[12])) / ticks
    if pid not in used:
        return None
    tree, grew = {pid}, True
    while grew:
        found = {child for child, parent in parents.items() if parent in tree}
        grew = not found <= tree
        tree |= found
    return sum(used[p] for p in tree)


def ready_time(
    argv: list[str], env: dict[str, str], cwd: Path, port: int, path: str, body: bytes
) -> tuple[float, float | None]:
    """Seconds from exec until ``POST path`` with ``body`` answers 200 (polled every 10 ms), and
    the CPU seconds the server's processes had used by then."""
    import http.client

    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    headers = {"Content-Type": "application/json"}
    try:
        while time.perf_counter() - start < 120:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("POST", path, body, headers)
                answer = conn.getresponse()
                answer.read()
                if answer.status == 200:
                    return time.perf_counter() - start, tree_cpu(proc.pid)
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"{argv[0]} not ready in 120 s")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def median(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    fn()  # untimed: writes the bytecode cache, warms the OS's file cache
    return statistics.median(fn() for _ in range(repeat))


def report(name: str, ours: float, peer: float | None, note: str = "") -> None:
    RESULTS.append((name, ours, peer, note))
    peer_s = f"{peer:7.3f}s" if peer is not None else "      -"
    ratio = f"{peer / ours:6.1f}x" if peer is not None else "      -"
    print(f"{name:<44} opsloop {ours:7.3f}s  mlflow {peer_s}  ratio {ratio}  {note}", flush=True)


# -- main ---------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="Runs per command (median).")
    parser.add_argument("--only", default="", help="Comma-separated name fragments to run.")
    parser.add_argument("--no-mlflow", action="store_true", help="Time opsloop only.")
    parser.add_argument("--keep", type=Path, help="Seed into (or reuse) this folder.")
    args = parser.parse_args()
    only = [s for s in args.only.split(",") if s]

    def wanted(name: str) -> bool:
        return not only or any(s in name for s in only)

    root = args.keep or Path(tempfile.mkdtemp(prefix="opsloop-bench-cli-"))
    root.mkdir(parents=True, exist_ok=True)
    ours_dir, peer_dir = root / "opsloop", root / "mlflow"
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"  # MLflow execs `uvicorn` by name
    base = {**os.environ, "PATH": path, "COLUMNS": "120", "PYTHONWARNINGS": "ignore"}
    if base.pop("PYTHONDONTWRITEBYTECODE", None):  # a user's install has its bytecode cached:
        base["PYTHONPYCACHEPREFIX"] = str(root / "pycache")  # cache it here, outside the tree
    ours_env = {**base, "OPSLOOP_HOME": str(ours_dir / "home"), "OPSLOOP_CAPTURE_ENV": "0"}
    for key in ("OPSLOOP_SERVER_URL", "OPSLOOP_DATABASE_URL", "OPSLOOP_BLOB_URL"):
        ours_env.pop(key, None)
    uri = f"sqlite:///{peer_dir / 'mlflow.db'}"
    peer_env = {
        **base, "MLFLOW_TRACKING_URI": uri, "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
    }  # fmt: skip
    with_peer = not args.no_mlflow
    start = time.perf_counter()
    if not (ours_dir / "rows.json").exists():
        ours_dir.mkdir(parents=True, exist_ok=True)
        run_python(
            python_source(SEED_OPSLOOP, FOLDER=str(ours_dir), MODEL=MODEL, MONITOR=MONITOR,
                          ROWS=WINDOW_ROWS),
            ours_env,
        )  # fmt: skip
    if with_peer and not (peer_dir / "mlflow.db").exists():
        peer_dir.mkdir(parents=True, exist_ok=True)
        run_python(python_source(SEED_MLFLOW, URI=uri, MODEL=MODEL), {**peer_env})
    print(f"seeded {root} in {time.perf_counter() - start:.0f} s; {os.cpu_count()} cores, "
          f"median of {args.repeat}", flush=True)  # fmt: skip

    ops, mlf = str(BIN / "opsloop"), str(BIN / "mlflow")
    exp_id = ""
    if with_peer:
        out = subprocess.run(
            [mlf, "experiments", "get", "-n", "bench", "--output", "json"],
            env=peer_env, capture_output=True, text=True, cwd=peer_dir,
        ).stdout  # fmt: skip
        exp_id = json.loads(out)["experiment_id"] if out.strip().startswith("{") else ""
    rows_json, rows_csv = str(ours_dir / "rows.json"), str(ours_dir / "rows.csv")
    commands: list[tuple[str, list[str], list[str] | None]] = [
        ("opsloop --help", [ops, "--help"], [mlf, "--help"]),
        ("experiments list", [ops, "experiments", "list"], [mlf, "experiments", "search"]),
        ("experiments show bench", [ops, "experiments", "show", "bench"],
         [mlf, "experiments", "get", "-n", "bench"]),
        ("runs list -e bench", [ops, "runs", "list", "-e", "bench"],
         [mlf, "runs", "list", "--experiment-id", exp_id] if exp_id else None),
        ("models list", [ops, "models", "list"], None),
        ("models show", [ops, "models", "show", MODEL], None),
        ("models show @champion", [ops, "models", "show", f"{MODEL}@champion"], None),
        ("models history", [ops, "models", "history", MODEL], None),
        ("deployments list", [ops, "deployments", "list"], None),
        ("monitors list", [ops, "monitors", "list"], None),
        ("models predict (3 rows)", [ops, "models", "predict", f"{MODEL}@champion", rows_json],
         [mlf, "models", "predict", "-m", f"models:/{MODEL}@champion", "-i", rows_csv, "-t",
          "csv", "--env-manager", "local"]),
        (f"monitors check ({WINDOW_ROWS:,} rows)", [ops, "monitors", "check", MONITOR], None),
    ]  # fmt: skip
    for name, ours_argv, peer_argv in commands:
        if not wanted(name):
            continue
        ours = median(lambda a=ours_argv: whole_process(a, ours_env, ours_dir), args.repeat)  # type: ignore[misc]
        peer = None
        if with_peer and peer_argv is not None:
            peer = median(lambda a=peer_argv: whole_process(a, peer_env, peer_dir), args.repeat)  # type: ignore[misc]
        report(name, ours, peer)

    if wanted("log_model"):
        calls: dict[str, list[float]] = {"opsloop": [], "mlflow": []}
        wholes: dict[str, list[float]] = {"opsloop": [], "mlflow": []}
        for tool in ("opsloop", "mlflow") if with_peer else ("opsloop",):
            env = ours_env if tool == "opsloop" else peer_env
            source = python_source(LOG_MODEL[tool], URI=uri)
            for _ in range(args.repeat):
                begin = time.perf_counter()
                calls[tool].append(float(run_python(source, env).split()[-1]))
                wholes[tool].append(time.perf_counter() - begin)
        med = {k: statistics.median(v) if v else None for k, v in calls.items()}
        report("log_model (the call, in a run)", med["opsloop"], med["mlflow"])  # type: ignore[arg-type]
        med = {k: statistics.median(v) if v else None for k, v in wholes.items()}
        report("log_model (train + log, whole script)", med["opsloop"], med["mlflow"])  # type: ignore[arg-type]

    if wanted("serve"):
        # Ready = the first prediction answered (3 rows through MLflow's scoring protocol, which
        # both servers speak), not the port open. Wall time counts whatever else the machine
        # runs; the servers' own CPU seconds by then do not, so both are reported.
        scoring_body = json.dumps(
            {"dataframe_records": json.loads((ours_dir / "rows.json").read_text())}
        ).encode()

        def serve_ready(argv: list[str], env: dict[str, str], cwd: Path, port: int) -> list[float]:
            wall, cpu = ready_time(argv, env, cwd, port, "/invocations", scoring_body)
            return [wall, cpu if cpu is not None else float("nan")]

        def ours_serve() -> list[float]:
            port = free_port()
            return serve_ready([ops, "serve", "--port", str(port)], ours_env, ours_dir, port)

        def peer_serve() -> list[float]:
            port = free_port()
            argv = [mlf, "models", "serve", "-m", f"models:/{MODEL}@champion", "-p", str(port),
                    "--env-manager", "local", "--workers", "1"]  # fmt: skip
            return serve_ready(argv, peer_env, peer_dir, port)

        tools = [("opsloop", ours_serve)] + ([("mlflow", peer_serve)] if with_peer else [])
        runs: dict[str, list[list[float]]] = {}
        loads = []
        for tool, serve in tools:
            serve()  # untimed, as in median()
            runs[tool] = [serve() for _ in range(args.repeat)]
            loads.append(os.getloadavg()[0])
        walls = {t: statistics.median(r[0] for r in v) for t, v in runs.items()}
        cpus = {t: statistics.median(r[1] for r in v) for t, v in runs.items()}
        load = f"load average {max(loads):.1f}"
        report("serve: exec to first prediction, wall", walls["opsloop"], walls.get("mlflow"), load)
        report("serve: exec to first prediction, CPU", cpus["opsloop"], cpus.get("mlflow"), load)

    print("\ncommand | opsloop s | mlflow s | ratio")
    for name, ours, peer, _note in RESULTS:
        peer_s, ratio = ("-", "-") if peer is None else (f"{peer:.3f}", f"{peer / ours:.1f}x")
        print(f"{name} | {ours:.3f} | {peer_s} | {ratio}")


if __name__ == "__main__":
    main()
