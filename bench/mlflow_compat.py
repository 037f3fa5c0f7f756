"""The unchanged ``mlflow`` client against ``opsloop server`` and against MLflow's own server.

    python3 -m venv .venv-mlflow && .venv-mlflow/bin/pip install mlflow   # the peer's server
    .venv/bin/python bench/mlflow_compat.py            # full size (a few minutes)
    .venv/bin/python bench/mlflow_compat.py --quick    # a smoke run

Both servers run on loopback with one worker over SQLite; the client is the same ``mlflow``
install (``.venv``), pointed at each by its tracking URI, as a user would switch. Scenarios:
10,000 ``log_metric`` calls (one request each), 100,000 values through ``log_batch`` (the client
sends 1,000 per request), and ``search_runs`` with a metric filter over 10,000 runs x 20
metrics (seeded straight into each store, then searched through each server; best of 3).
The sides take turns, round by round, so a busy machine slows them alike. Each line prints
both times and the ratio (MLflow's time / opsloop's), then the CPU time each server process
(with its children) spent on the scenario: on a shared, noisy machine the steadier measure of
what each server costs, the client's own cost left out. A third side, a server that answers at
once (``bench/instant_mlflow.py``; its search answer is opsloop's, replayed), times the client
alone: MLflow's time over it is the ceiling, the ratio a server costing nothing would reach.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
from seed import populate_opsloop

os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
ROOT = Path(__file__).resolve().parent.parent
OPSLOOP = ROOT / ".venv" / "bin" / "opsloop"
MLFLOW_SERVER = ROOT / ".venv-mlflow" / "bin" / "mlflow"
INSTANT = Path(__file__).resolve().parent / "instant_mlflow.py"
RESULTS: list[tuple[str, float, float, float, float, float]] = []


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def report(name: str, ours: Side, peer: Side, free: Side) -> None:
    RESULTS.append((name, ours.seconds, peer.seconds, ours.cpu, peer.cpu, free.seconds))
    print(
        f"{name:<56} opsloop {ours.seconds:8.3f}s  mlflow {peer.seconds:8.3f}s  ratio "
        f"{peer.seconds / ours.seconds:6.1f}x  (server CPU {ours.cpu:.3f}s vs {peer.cpu:.3f}s; "
        f"instant server {free.seconds:.3f}s: ceiling {peer.seconds / free.seconds:.1f}x)"
    )


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live children (a server's workers)."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Servers:
    """opsloop's and MLflow's servers over the stores in ``folder`` (``ops.db``, ``mlflow.db``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> tuple[tuple[str, int], tuple[str, int], tuple[str, int]]:
        oport, mport, iport = free_port(), free_port(), free_port()
        ours = self._start(
            [str(OPSLOOP), "server", "--port", str(oport),
             "--database-url", f"sqlite:///{self.folder / 'ops.db'}",
             "--blob-url", str(self.folder / "blobs")],
            f"http://127.0.0.1:{oport}/healthz",
            {"OPSLOOP_HOME": str(self.folder / "home")},
        )  # fmt: skip
        peer = self._start(
            [str(MLFLOW_SERVER), "server", "--port", str(mport), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
             "--artifacts-destination", str(self.folder / "mlartifacts")],
            f"http://127.0.0.1:{mport}/health",
        )  # fmt: skip
        free = self._start(
            [sys.executable, str(INSTANT), str(iport), str(self.folder / "search-answer.json")],
            f"http://127.0.0.1:{iport}/health",
        )
        return (ours, self.procs[0].pid), (peer, self.procs[1].pid), (free, self.procs[2].pid)

    def _start(self, cmd: list[str], health: str, env: dict[str, str] | None = None) -> str:
        log = open(self.folder / f"{Path(cmd[0]).name}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, env={**os.environ, **(env or {})})
        self.procs.append(proc)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(health).status_code == 200:
                    return health.rsplit("/", 1)[0]
            except httpx.TransportError:
                time.sleep(0.3)
        raise RuntimeError(f"{cmd[0]} did not start; see {log.name}")

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(30)


def seed_stores(folder: Path, runs: int, metrics: int) -> None:
    """The same runs in ``ops.db`` and ``mlflow.db``, the latter written by the peer server's
    own ``mlflow`` (its schema version is the one that server expects)."""
    from opsloop import Client

    blobs = str(folder / "blobs")
    Client(database_url=f"sqlite:///{folder / 'ops.db'}", blob_url=blobs).close()  # migrated
    populate_opsloop(folder, runs, metrics, name="search")
    code = (
        "import sys; from pathlib import Path; from seed import populate_mlflow; "
        "populate_mlflow(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), name='search')"
    )
    python = str(MLFLOW_SERVER.parent / "python")
    subprocess.run(
        [python, "-c", code, str(folder), str(runs), str(metrics)],
        cwd=Path(__file__).parent,
        check=True,
    )


class Side:
    """One server as the client sees it: a client on its URI and a fresh run to log to, and the
    server's process (``pid``) whose CPU time is counted."""

    def __init__(self, uri: str, pid: int) -> None:
        from mlflow import MlflowClient

        self.uri, self.pid = uri, pid
        self.client = MlflowClient(uri)
        experiment_id = self.client.create_experiment(f"compat-{time.time_ns()}")
        self.run_id = self.client.create_run(experiment_id).info.run_id
        self.step = 0
        self.seconds = self.cpu = 0.0

    def log_metric_calls(self, n: int) -> None:
        for _ in range(n):
            self.client.log_metric(self.run_id, "loss", 1.0 / (self.step + 1), step=self.step)
            self.step += 1

    def log_batch_values(self, n: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        first = self.step
        points = [Metric(f"m{i % 10}", i * 0.001, now, first + i // 10) for i in range(n)]
        self.client.log_batch(self.run_id, metrics=points)  # the client sends 1,000 a request
        self.step += n // 10 + 1

    def search(self, filter_string: str) -> int:
        experiment_id = self.client.get_experiment_by_name("search").experiment_id
        return len(self.client.search_runs([experiment_id], filter_string, max_results=1000))


def replay(ours: Side, filter_string: str, answer: Path) -> None:
    """Write opsloop's answer to the benchmark's search where the instant server replays it."""
    experiment_id = ours.client.get_experiment_by_name("search").experiment_id
    body = {"experiment_ids": [experiment_id], "filter": filter_string, "max_results": 1000}
    found = httpx.post(f"{ours.uri}/api/2.0/mlflow/runs/search", json=body, timeout=120)
    answer.write_bytes(found.raise_for_status().content)


def interleaved(sides: list[Side], work: Callable[[Side], object], rounds: int) -> None:
    """Run ``work`` ``rounds`` times on each side, alternating which goes first, adding each
    side's time to ``side.seconds`` (its server's CPU time to ``side.cpu``): the machine's load,
    whatever it does, falls on both."""
    for side in sides:
        side.seconds = side.cpu = 0.0
    for r in range(rounds):
        for side in sides if r % 2 == 0 else sides[::-1]:
            before = tree_cpu(side.pid)
            side.seconds += timed(lambda side=side: work(side))  # type: ignore[misc]
            side.cpu += tree_cpu(side.pid) - before


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="Smaller sizes (a smoke run).")
    parser.add_argument("--log-metric-n", type=int, default=10_000)
    parser.add_argument("--batch-n", type=int, default=100_000)
    parser.add_argument("--search-runs", type=int, default=10_000)
    args = parser.parse_args()
    if args.quick:
        args.log_metric_n, args.batch_n, args.search_runs = 500, 10_000, 1000
    if not MLFLOW_SERVER.exists():
        sys.exit(f"no MLflow server at {MLFLOW_SERVER}: see this script's docstring")
    import mlflow

    peer_version = subprocess.run(
        [str(MLFLOW_SERVER), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    cores = os.cpu_count()
    print(f"client mlflow {mlflow.__version__}; peer server {peer_version}; {cores} cores; "
          f"{_load()}")  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="opsloop-mlflow-compat-"))
    runs, metrics = args.search_runs, 20
    seed_stores(folder, runs, metrics)
    with Servers(folder) as (ours_server, peer_server, free_server):
        ours, peer, free = sides = [Side(*s) for s in (ours_server, peer_server, free_server)]
        n, rounds = args.log_metric_n, 10
        interleaved(sides, lambda side: side.log_metric_calls(n // rounds), rounds)
        report(f"{n:,} log_metric calls over HTTP", ours, peer, free)

        n = args.batch_n
        interleaved(sides, lambda side: side.log_batch_values(n // rounds), rounds)
        report(f"{n:,} values via log_batch", ours, peer, free)

        flt = "metrics.m3 > 0.5 and metrics.m7 < 0.9"
        replay(ours, flt, folder / "search-answer.json")
        hits = ours.search(flt), peer.search(flt), free.search(flt)  # and warm all three
        assert hits[0] == hits[1] == hits[2], hits
        best = {id(side): float("inf") for side in sides}

        def best_search(side: Side) -> None:
            best[id(side)] = min(best[id(side)], timed(lambda: side.search(flt)))

        interleaved(sides, best_search, 5)
        for side in sides:  # the best time; the server's CPU time per search, on average
            side.seconds, side.cpu = best[id(side)], side.cpu / 5
        report(
            f"search_runs, {runs:,} runs x {metrics} metrics ({hits[0]} hits), best of 5",
            ours,
            peer,
            free,
        )

    print("\nscenario | opsloop s | mlflow s | ratio | server CPU opsloop s | mlflow s | ratio"
          " | instant server s | ceiling")  # fmt: skip
    for name, ours_s, peer_s, ours_cpu, peer_cpu, free_s in RESULTS:
        print(
            f"{name} | {ours_s:.3f} | {peer_s:.3f} | {peer_s / ours_s:.1f}x | {ours_cpu:.3f} | "
            f"{peer_cpu:.3f} | {peer_cpu / max(ours_cpu, 1e-9):.1f}x | {free_s:.3f} | "
            f"{peer_s / free_s:.1f}x"
        )
    print(f"at the end: {_load()} (wall ratios are only as steady as the machine is quiet)")


def _load() -> str:
    """The load averages (1, 5, 15 min): the other work on the machine the times include."""
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
