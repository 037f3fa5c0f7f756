"""Web UI: the runs table of 10,000 runs x 20 metrics, opsloop vs MLflow, timed in a browser.

    ./dev bench bench/ui.py                 # full size
    .venv/bin/python bench/ui.py --runs 1000 --repeat 2
    .venv/bin/python bench/ui.py --mlflow PATH/bin/mlflow   # MLflow's UI from another venv

MLflow's web UI ships only in the full ``mlflow`` wheel (``mlflow-skinny``, which the test extra
installs, has no JavaScript), so ``--mlflow`` may name the ``mlflow`` command of a venv that
holds it; by default the one in ``.venv-mlflow`` (``python3 -m venv .venv-mlflow &&
.venv-mlflow/bin/pip install mlflow``, as ``bench/mlflow_compat.py`` uses), when it exists.

Both tools get the same data (run i has params lr, depth and metrics m0..m19, with m0 = i/N),
each served by its own server on loopback, and the same Debian chromium driven by Playwright:

1. first render: navigate to the experiment's runs table until its first rows are on screen
   (first visit with an empty cache, then the median of warm visits); each tool's server runs
   alone while it is measured, from a few seconds after it came up;
2. filter: type ``metrics.m0 >= 0.999`` into the table's search box, press Enter, and wait until
   exactly the 10 matching runs are shown.

The data is set up (untimed) by ``bench/seed.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from seed import populate_mlflow
from seed import populate_opsloop

BIN = Path(sys.executable).parent
PEER_VENV_MLFLOW = Path(__file__).resolve().parent.parent / ".venv-mlflow" / "bin" / "mlflow"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FILTER = "metrics.m0 >= 0.999"
SETTLE_S = 10.0  # after a server answers: its start-up work is not page rendering


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


# -- servers -----------------------------------------------------------------------------------
def start_opsloop(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = dict(
        os.environ,
        OPSLOOP_DATABASE_URL=f"sqlite:///{folder / 'ops.db'}",
        OPSLOOP_BLOB_URL=str(folder / "blobs"),
    )
    proc = subprocess.Popen(
        [str(BIN / "opsloop"), "server", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz")
    return proc, url


def start_mlflow(folder: Path, command: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [command, "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--default-artifact-root", str(folder / "mlartifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health")
    return proc, url


def seed_mlflow(folder: Path, runs: int, metrics: int, command: Path) -> str:
    """MLflow's runs, written by the python of the served ``mlflow`` (the store's schema must be
    the one that server expects); the experiment id is its last line of output."""
    if command.parent == BIN:
        return populate_mlflow(folder, runs, metrics)
    code = (
        "import sys; from pathlib import Path; from seed import populate_mlflow; "
        "print(populate_mlflow(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))"
    )
    done = subprocess.run(
        [str(command.parent / "python"), "-c", code, str(folder), str(runs), str(metrics)],
        cwd=Path(__file__).parent,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip().splitlines()[-1]


def _text(url: str) -> str:
    import httpx

    return httpx.get(url, timeout=10).text


# -- the browser ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tool:
    """How to reach one tool's runs table, find its rows, type a filter, and what it must show."""

    name: str
    table_url: str
    rows: str
    search: str
    expected: list[str]


def time_render(page, tool: Tool) -> float:  # type: ignore[no-untyped-def]
    """From navigation start until the table's first rows are in the DOM."""
    page.goto("about:blank")
    start = time.perf_counter()
    page.goto(tool.table_url, wait_until="commit")
    page.wait_for_selector(tool.rows, timeout=120_000)
    return time.perf_counter() - start


def time_filter(browser, tool: Tool) -> float:  # type: ignore[no-untyped-def]
    """From pressing Enter in the filter box until exactly the matching runs are shown.

    A fresh browser context each time: MLflow remembers the last filter in local storage and
    would otherwise open already filtered.
    """
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(tool.table_url)
    page.wait_for_selector(tool.rows, timeout=120_000)
    page.wait_for_timeout(1500)  # let the page settle (MLflow keeps polling: never network-idle)
    box = page.locator(tool.search)
    box.fill(FILTER)
    start = time.perf_counter()
    box.press("Enter")
    _wait_filtered(page, tool)
    elapsed = time.perf_counter() - start
    context.close()
    return elapsed


def _wait_filtered(page, tool: Tool) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        "([rows, expected]) => {"
        " const shown = [...document.querySelectorAll(rows)].map(r => r.textContent);"
        " return shown.length === expected.length"
        "   && expected.every(n => shown.some(t => t.includes(n)));"
        "}",
        arg=[tool.rows, tool.expected],
        timeout=120_000,
    )


def measure(browser, tool: Tool, repeat: int) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """(first visit in a fresh browser context, median warm visit, median filter)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto("about:blank")  # the renderer process is up: time the page, not the browser
    cold = time_render(page, tool)
    warm = statistics.median(time_render(page, tool) for _ in range(repeat))
    context.close()
    filtered = statistics.median(time_filter(browser, tool) for _ in range(repeat))
    return cold, warm, filtered


def report(name: str, ours: float, peer: float) -> None:
    print(
        f"{name:<44} opsloop {ours:7.3f}s  mlflow {peer:7.3f}s  ratio {peer / ours:6.1f}x",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument(
        "--repeat", type=int, default=3, help="Warm measurements per figure (median)."
    )
    parser.add_argument(
        "--mlflow",
        default=str(PEER_VENV_MLFLOW if PEER_VENV_MLFLOW.exists() else BIN / "mlflow"),
        help="The mlflow command that serves MLflow's UI (a full mlflow install, not skinny; "
        "default: .venv-mlflow's when there is one).",
    )
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit("Debian's chromium is needed: apt-get install -y chromium")
    if not Path(args.mlflow).exists():
        sys.exit(f"no mlflow command at {args.mlflow}: pass --mlflow PATH")
    expected = [f"run-{i:05d}" for i in range(args.runs) if i / args.runs >= 0.999]

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="opsloop-bench-ui-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        ours_exp = populate_opsloop(folder, args.runs, args.metrics)
        peer_exp = seed_mlflow(folder, args.runs, args.metrics, Path(args.mlflow))
        setup = time.perf_counter() - started
        print(f"data: {args.runs} runs x {args.metrics} metrics in each tool ({setup:.0f}s set-up)")

        def serve_ours() -> tuple[subprocess.Popen[bytes], Tool]:
            proc, url = start_opsloop(folder)
            table = f"{url}/experiments/{ours_exp}"
            return proc, Tool("opsloop", table, "#runs-table tbody tr", "#filter", expected)

        def serve_peer() -> tuple[subprocess.Popen[bytes], Tool]:
            proc, url = start_mlflow(folder, args.mlflow)
            if "landing page (index.html) not found" in _text(url):
                proc.terminate()
                sys.exit(f"{args.mlflow} serves no UI (mlflow-skinny?): pass --mlflow PATH")
            table = f"{url}/#/experiments/{peer_exp}/runs?workflowType=machine_learning"
            rows = ".ag-pinned-left-cols-container .ag-row"
            return proc, Tool("mlflow", table, rows, '[data-testid="search-box"]', expected)

        results: dict[str, tuple[float, float, float]] = {}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--headless", "--no-sandbox", "--disable-background-networking"],
            )
            # One server at a time, each measured once its start-up work is done: a server
            # answers once it listens, then keeps starting up (MLflow's job runner and huey
            # workers, opsloop's scheduler and controllers), which is not page rendering.
            for serve in (serve_ours, serve_peer):
                proc, tool = serve()
                try:
                    time.sleep(SETTLE_S)
                    results[tool.name] = measure(browser, tool, args.repeat)
                finally:
                    proc.terminate()
                    proc.wait(30)
            browser.close()
        labels = (
            "runs table, first render (cold cache)",
            "runs table, first render (warm, median)",
            f"apply filter {FILTER!r}",
        )
        for index, label in enumerate(labels):
            report(label, results["opsloop"][index], results["mlflow"][index])


if __name__ == "__main__":
    main()
