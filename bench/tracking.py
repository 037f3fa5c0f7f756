"""Tracking hot paths, opsloop vs MLflow, side by side in one process run.

    ./dev bench bench/tracking.py            # full size (takes a few minutes: MLflow is slow)
    .venv/bin/python bench/tracking.py --quick

Each scenario prints both times and the ratio (MLflow time / opsloop time). Both tools run on
their embedded defaults in fresh temp folders (SQLite, local files), then against their own
servers on loopback.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from seed import populate_mlflow
from seed import populate_opsloop

os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # still the fastest MLflow store
os.environ.setdefault("OPSLOOP_CAPTURE_ENV", "0")  # measure logging, not start-up capture
BIN = Path(sys.executable).parent
RESULTS: list[tuple[str, float, float]] = []
LOG_METRIC_CALL_S: list[float] = []  # the log_metric loop alone, per call


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def report(name: str, ours: float, peer: float, peer_name: str = "mlflow") -> None:
    RESULTS.append((name, ours, peer))
    print(
        f"{name:<58} opsloop {ours:8.3f}s  {peer_name} {peer:8.3f}s  ratio {peer / ours:7.1f}x",
        flush=True,
    )


# -- opsloop ---------------------------------------------------------------------------------------
def opsloop_client(folder: Path, server_url: str | None = None):  # type: ignore[no-untyped-def]
    from opsloop import Client

    if server_url:
        return Client(server_url=server_url)
    return Client(database_url=f"sqlite:///{folder / 'ops.db'}", blob_url=str(folder / "blobs"))


def opsloop_log_metric(client, n: int) -> None:  # type: ignore[no-untyped-def]
    exp = client.set_experiment("bench")
    run_id = client.create_run(exp.experiment_id).info.run_id
    start = time.perf_counter()
    for i in range(n):
        client.log_metric(run_id, "loss", i * 0.001, step=i)
    LOG_METRIC_CALL_S.append((time.perf_counter() - start) / n)
    client.end_run(run_id)
    assert len(client.get_metric_history(run_id, "loss").values) == n


def opsloop_log_batch(client, n: int) -> None:  # type: ignore[no-untyped-def]
    exp = client.set_experiment("bench-batch")
    run_id = client.create_run(exp.experiment_id).info.run_id
    now = int(time.time() * 1000)
    client.log_batch(run_id, [(f"m{i % 10}", i * 0.5, i, now) for i in range(n)])
    client.end_run(run_id)


# -- mlflow ----------------------------------------------------------------------------------------
def mlflow_log_metric(uri: str, n: int) -> None:
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench")
    with mlflow.start_run() as run:
        for i in range(n):
            mlflow.log_metric("loss", i * 0.001, step=i)
    history = mlflow.MlflowClient(uri).get_metric_history(run.info.run_id, "loss")
    assert len(history) == n


def mlflow_log_batch(uri: str, n: int) -> None:
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment(f"bench-batch-{time.time_ns()}")
    run_id = client.create_run(exp).info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(f"m{i % 10}", i * 0.5, now, i) for i in range(n)]
    for start in range(0, n, 1000):  # MLflow's per-call limit
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
    client.set_terminated(run_id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    cmd: list[str], port: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})}
    )
    import httpx

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if (
                httpx.get(
                    f"http://127.0.0.1:{port}/health"
                    if "mlflow" in cmd[0]
                    else f"http://127.0.0.1:{port}/healthz"
                ).status_code
                == 200
            ):
                return proc
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"server did not start: {cmd}")


def startup_time(args: list[str]) -> float:
    best = float("inf")
    for _ in range(5):
        best = min(best, timed(lambda: subprocess.run(args, check=True, capture_output=True)))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="Smaller sizes (a smoke run).")
    parser.add_argument("--log-metric-n", type=int, default=10_000)
    parser.add_argument("--batch-n", type=int, default=100_000)
    parser.add_argument("--search-runs", type=int, default=10_000)
    parser.add_argument("--skip", default="", help="Comma-separated scenario numbers to skip.")
    args = parser.parse_args()
    if args.quick:
        args.log_metric_n, args.batch_n, args.search_runs = 1000, 10_000, 500
    skip = set(args.skip.split(","))
    import mlflow

    import opsloop.tracking.local
    import opsloop.tracking.remote  # noqa: F401  (import both tools before timing)

    print(f"opsloop vs mlflow {mlflow.__version__}, {os.cpu_count()} cores", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="opsloop-bench-"))
    os.environ["OPSLOOP_HOME"] = str(tmp / "home")  # the metric journal too, not ~/.opsloop
    n = args.log_metric_n

    if "1" not in skip:
        ours = timed(lambda: opsloop_log_metric(opsloop_client(tmp / "o1"), n))
        peer = timed(lambda: mlflow_log_metric(f"sqlite:///{tmp / 'm1.db'}", n))
        report(f"1. {n:,} log_metric + end_run, embedded (mlflow sqlite)", ours, peer)
        peer_file = timed(lambda: mlflow_log_metric(f"file://{tmp / 'mlruns'}", n))
        report(f"1. {n:,} log_metric + end_run, embedded (mlflow file store)", ours, peer_file)
        print(
            f"   opsloop log_metric alone: {LOG_METRIC_CALL_S[-1] * 1e6:.2f} us/call, journaled"
            " (a returned call survives SIGKILL)",
            flush=True,
        )

    if "2" not in skip:
        ours = timed(lambda: opsloop_log_batch(opsloop_client(tmp / "o2"), args.batch_n))
        peer = timed(lambda: mlflow_log_batch(f"sqlite:///{tmp / 'm2.db'}", args.batch_n))
        report(f"2. {args.batch_n:,} values via log_batch (sqlite)", ours, peer)

    if "3" not in skip:
        runs, k = args.search_runs, 20
        (tmp / "o3").mkdir()
        populate_opsloop(tmp / "o3", runs, k, name="search")
        client = opsloop_client(tmp / "o3")
        mexp = populate_mlflow(tmp / "o3", runs, k, name="search")
        mclient = mlflow.MlflowClient(f"sqlite:///{tmp / 'o3' / 'mlflow.db'}")
        flt = "metrics.m3 > 0.5 and metrics.m7 < 0.9"
        ours_hits = peer_hits = 0

        def ours_search() -> None:
            nonlocal ours_hits
            ours_hits = len(client.search_runs("search", flt, max_results=1000).items)

        def peer_search() -> None:
            nonlocal peer_hits
            peer_hits = len(mclient.search_runs([mexp], flt, max_results=1000))

        ours_search(), peer_search()  # warm caches on both sides
        ours = min(timed(ours_search) for _ in range(3))
        peer = min(timed(peer_search) for _ in range(3))
        assert ours_hits == peer_hits, (ours_hits, peer_hits)
        report(
            f"3. search_runs, metric filter, {runs:,} runs x {k} metrics (1000 hits)", ours, peer
        )

    if "4" not in skip:
        oport, mport = free_port(), free_port()
        osrv = start_server(
            [str(BIN / "opsloop"), "server", "--port", str(oport)],
            oport,
            {"OPSLOOP_HOME": str(tmp / "osrv")},
        )
        msrv = start_server(
            [
                str(BIN / "mlflow"),
                "server",
                "--port",
                str(mport),
                "--backend-store-uri",
                f"sqlite:///{tmp / 'msrv.db'}",
                "--default-artifact-root",
                str(tmp / "martifacts"),
                "--workers",
                "1",
            ],
            mport,
        )
        try:
            ours = timed(
                lambda: opsloop_log_metric(opsloop_client(tmp, f"http://127.0.0.1:{oport}"), n)
            )
            peer = timed(lambda: mlflow_log_metric(f"http://127.0.0.1:{mport}", n))
            report(f"4. {n:,} log_metric + end_run over HTTP (own servers)", ours, peer)
        finally:
            osrv.terminate(), msrv.terminate()

    if "5" not in skip:
        py = str(BIN / "python")
        report(
            "5. import (python -c 'import X')",
            startup_time([py, "-c", "import opsloop"]),
            startup_time([py, "-c", "import mlflow"]),
        )
        report(
            "5. CLI --help",
            startup_time([str(BIN / "opsloop"), "--help"]),
            startup_time([str(BIN / "mlflow"), "--help"]),
        )

    print("\nscenario | opsloop s | mlflow s | ratio")
    for name, ours, peer in RESULTS:
        print(f"{name} | {ours:.3f} | {peer:.3f} | {peer / ours:.1f}x")


if __name__ == "__main__":
    main()
