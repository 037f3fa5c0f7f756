"""Serving beyond one process: ``opsloop serve`` under uvicorn (1 and 2 worker processes) vs
``opsloop serve --on ray`` with 1 and 2 Ray Serve replicas, side by side.

    .venv/bin/python bench/scale.py [--seconds 5] [--replicas 1,2]

One model (bench/serving.py's StandardScaler + LogisticRegression on the breast-cancer table),
registered once in a temp home and deployed; each setup serves it from that home in turn (the
prediction log and metrics on, as users run it) and gets the same load: bench/loadgen.py sending
single-row JSON requests over keep-alive connections at concurrency 1 and 32 for ``--seconds``
each, after a warm-up. Printed: a table of predictions/s and p50 / p99 latency per setup and
concurrency, and each setup's throughput over uvicorn's single process. On Ray, requests pass
through Serve's HTTP proxy (a process of its own) before a replica answers; the machine's cores
are shared by the proxy, the replicas and the load generator.

``--seal-lag`` measures the shared prediction log instead: ``--replicas`` ``opsloop serve``
processes, each with a home of its own (as on separate hosts) sharing one SQLite database and
one moto S3 bucket, and a reader with a folder of its own (a monitor on another host): for each
of ``--samples`` single-row requests sent in turn to the replicas, the seconds from the answer
to the row being visible to that reader (sealed, every 2 s, and listed), and the replicas'
predictions/s at concurrency 32, all replicas loaded at once.

``--images`` measures the container image instead (``opsloop deployments build-image bench``,
built with buildah): its size against the floor (the base layer plus the distributions the
model's lock and the image server need, at their installed size, as installing them alone
writes them) and against MLflow's ``build-docker`` image (~3 GB as its users report; it cannot
be built here: it pulls a registry image and pip-installs from the network), the first build's
time (layers this machine already holds are reused) and an unchanged rebuild's.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from serving import BIN
from serving import free_port
from serving import load
from serving import train
from serving import wait_ready

CONCURRENCY = (1, 32)
MLFLOW_IMAGE_BYTES = 3e9  # MLflow's build-docker image for a small scikit-learn model


def register(home: Path, model: Any, X: Any) -> None:
    """``bench@1`` deployed as ``bench`` in the store under ``home``."""
    code = (
        "import pickle, sys, opsloop; model, X = pickle.load(sys.stdin.buffer); "
        "c = opsloop.Client(); c.models.register('bench', model, input_example=X.head()); "
        "c.deployments.deploy('bench@1', name='bench'); c.close()"
    )
    subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps((model, X)), env=_env(home), check=True
    )


def _env(home: Path) -> dict[str, str]:
    return dict(os.environ, OPSLOOP_HOME=str(home), OPSLOOP_CAPTURE_ENV="0")


def measure(home: Path, args: list[str], body: dict[str, Any], seconds: float) -> list[Any]:
    """Start ``opsloop serve ARGS``, load it at each concurrency, stop it as Ctrl-C does; the
    seconds it took to answer, then one loadgen result per concurrency."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/deployments/bench/predict"
    output = home.parent / f"serve-{port}.out"
    start = time.perf_counter()
    with open(output, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "opsloop"), "serve", "--port", str(port), *args],
            env=_env(home), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        # On Ray the first replica answers before the others are up: the line comes after all.
        while "opsloop serve on" not in output.read_text():
            if proc.poll() is not None:
                raise RuntimeError(output.read_text())
            time.sleep(0.2)
        wait_ready(url, proc, body)
        ready = time.perf_counter() - start
        return [ready, *(load(url, body, c, seconds) for c in CONCURRENCY)]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(120)


def images(home: Path) -> None:
    """Build ``bench``'s image twice and print its size, floor and build times."""
    from opsloop.serving.image_lock import needed_distributions

    times, built = [], {}
    for _ in range(2):
        start = time.perf_counter()
        done = subprocess.run(
            [str(BIN / "opsloop"), "deployments", "build-image", "bench", "--json"],
            env=_env(home), capture_output=True, text=True, check=True,
        )  # fmt: skip
        times.append(time.perf_counter() - start)
        built = json.loads(done.stdout)
    inspect = subprocess.run(
        ["buildah", "--storage-driver", "vfs", "inspect", "--type", "image", built["tag"]],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    layers = json.loads(json.loads(inspect.stdout)["Manifest"])["layers"]
    # The same closure, resolved from the pins the image holds.
    installed = sum(d.size() for d in needed_distributions(built["distributions"]))
    floor = int(layers[0]["size"]) + installed
    size = built["size"]
    print(f"\nimage {built['tag']}: {len(built['distributions'])} distributions")
    print(f"{'image MB':>9} {'floor MB':>9} {'ratio':>6} {'vs MLflow':>10} {'build s':>8} "
          f"{'rebuild s':>10}")  # fmt: skip
    print(f"{size / 1e6:9.1f} {floor / 1e6:9.1f} {size / floor:5.2f}x "
          f"{MLFLOW_IMAGE_BYTES / size:9.1f}x {times[0]:8.1f} {times[1]:10.1f}")  # fmt: skip


def seal_lag(counts: list[int], samples: int, seconds: float) -> None:
    """The ``--seal-lag`` table (see the module docstring)."""
    import statistics
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from opsloop.config import Settings
    from opsloop.serving.predlog import PredictionReader
    from opsloop.serving.predlog_shared import shared_log

    model, X = train()
    body = {"records": X.head(1).to_dict(orient="records")}
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    print(f"\nseal lag: {samples} requests per setup, {os.cpu_count()} cores; "
          f"pred/s: c=32 per replica for {seconds:g} s, all at once")  # fmt: skip
    print(f"{'replicas':>8} {'p50 s':>6} {'p99 s':>6} {'max s':>6} {'pred/s':>8} {'vs 1':>5}")
    base = None
    try:
        while True:
            try:
                httpx.put(f"{endpoint}/opsloop-bench").raise_for_status()  # moto: no signature
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        options = {
            "key": "bench",
            "secret": "bench",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
        for n in counts:
            with tempfile.TemporaryDirectory() as tmp:
                fields = {"database_url": f"sqlite:///{tmp}/shared.db",
                          "blob_url": f"s3://opsloop-bench/{Path(tmp).name}/blobs"}  # fmt: skip
                client_kwargs = ", ".join(f'{k} = "{v}"' for k, v in
                                          options["client_kwargs"].items())  # fmt: skip
                toml = "\n".join([*(f'{k} = "{v}"' for k, v in fields.items()),
                                   "[storage_options]", 'key = "bench"', 'secret = "bench"',
                                   f"client_kwargs = {{{client_kwargs}}}"])  # fmt: skip
                homes = [Path(tmp) / name for name in ("admin", *(f"host{i}" for i in range(n)))]
                for home in homes:
                    home.mkdir()
                    (home / "opsloop.toml").write_text(toml)
                register(homes[0], model, X)
                servers, urls = [], []
                for home in homes[1:]:
                    port = free_port()
                    servers.append(subprocess.Popen(
                        [str(BIN / "opsloop"), "serve", "--port", str(port)], env=_env(home),
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    ))  # fmt: skip
                    urls.append(f"http://127.0.0.1:{port}/v1/deployments/bench/predict")
                try:
                    for url, server in zip(urls, servers, strict=True):
                        wait_ready(url, server, body)
                    settings = Settings(home=Path(tmp) / "reader", storage_options=options,
                                        **fields)  # fmt: skip
                    reader = PredictionReader(settings.predictions_folder, shared_log(settings))
                    lags = []
                    for i in range(samples):
                        answer = httpx.post(urls[i % n], json=body, timeout=10).json()
                        answered = time.perf_counter()
                        while answer["request_id"] not in set(
                            reader.requests("bench", last=50)["request_id"]
                        ):  # fmt: skip
                            time.sleep(0.05)
                        lags.append(time.perf_counter() - answered)
                    with ThreadPoolExecutor(n) as pool:
                        runs = list(pool.map(lambda u: load(u, body, 32, seconds), urls))
                finally:
                    for server in servers:
                        server.send_signal(signal.SIGINT)
                    for server in servers:
                        server.wait(120)
            rps = sum(r["rps"] for r in runs)
            base = base or rps
            lags.sort()
            p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))]
            print(f"{n:8d} {statistics.median(lags):6.2f} {p99:6.2f} {lags[-1]:6.2f} "
                  f"{rps:8.0f} {rps / base:4.2f}x")  # fmt: skip
    finally:
        moto.terminate()
        moto.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--replicas", default="1,2", help="process counts to measure")
    parser.add_argument("--images", action="store_true", help="measure the image instead")
    parser.add_argument(
        "--seal-lag",
        action="store_true",
        help="measure the shared prediction log's seal lag instead",
    )
    parser.add_argument("--samples", type=int, default=20, help="requests timed (--seal-lag)")
    args = parser.parse_args()
    if args.seal_lag:
        seal_lag([int(n) for n in args.replicas.split(",")], args.samples, args.seconds)
        return
    if args.images:
        model, X = train()
        with tempfile.TemporaryDirectory() as tmp:
            register(Path(tmp) / "home", model, X)
            images(Path(tmp) / "home")
        return
    counts = [int(n) for n in args.replicas.split(",")]
    setups = [(f"uvicorn, {n} process{'es' if n > 1 else ''}", ["--workers", str(n)])
              for n in counts]  # fmt: skip
    setups += [(f"ray serve, {n} replica{'s' if n > 1 else ''}", ["--on", "ray", "--replicas",
                str(n)]) for n in counts]  # fmt: skip
    model, X = train()
    body = {"records": X.head(1).to_dict(orient="records")}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        register(home, model, X)
        for name, serve_args in setups:
            results[name] = measure(home, serve_args, body, args.seconds)
    print(f"\nsingle-row requests, {args.seconds:g} s per concurrency, {os.cpu_count()} cores")
    print(f"{'setup':<24} {'ready s':>7} " + " ".join(
        f"{'c=' + str(c) + ' pred/s':>12} {'p50 ms':>7} {'p99 ms':>7} {'vs 1':>5}"
        for c in CONCURRENCY))  # fmt: skip
    base = results[setups[0][0]]
    for name, (ready, *runs) in results.items():
        cells = [f"{r['rps']:12.0f} {r['p50']:7.2f} {r['p99']:7.2f} {r['rps'] / b['rps']:4.2f}x"
                 for r, b in zip(runs, base[1:], strict=True)]  # fmt: skip
        errors = sum(r["errors"] for r in runs)
        print(
            f"{name:<24} {ready:7.1f} " + " ".join(cells) + (f"  ({errors} errors)" * bool(errors))
        )


if __name__ == "__main__":
    main()
