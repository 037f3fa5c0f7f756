"""Web UI: the runs table of 10,000 runs x 20 metrics, opsloop vs MLflow, timed in a browser.

    ./dev bench bench/ui.py                 # full size
    .venv/bin/python bench/ui.py --runs 1000 --repeat 2

Both tools get the same data (run i has params lr, depth and metrics m0..m19, with m0 = i/N),
each served by its own server on loopback, and the same Debian chromium driven by Playwright:

1. first render: navigate to the experiment's runs table until its first rows are on screen
   (first visit with an empty cache, then the median of warm visits);
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

from seed import populate_mlflow, populate_opsloop

BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FILTER = "metrics.m0 >= 0.999"


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


def start_mlflow(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--default-artifact-root", str(folder / "mlartifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health")
    return proc, url


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
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit("Debian's chromium is needed: apt-get install -y chromium")
    expected = [f"run-{i:05d}" for i in range(args.runs) if i / args.runs >= 0.999]

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="opsloop-bench-ui-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        ours_exp = populate_opsloop(folder, args.runs, args.metrics)
        peer_exp = populate_mlflow(folder, args.runs, args.metrics)
        setup = time.perf_counter() - started
        print(f"data: {args.runs} runs x {args.metrics} metrics in each tool ({setup:.0f}s set-up)")
        servers: list[subprocess.Popen[bytes]] = []
        try:
            ours_proc, ours_url = start_opsloop(folder)
            servers.append(ours_proc)
            peer_proc, peer_url = start_mlflow(folder)
            servers.append(peer_proc)
            ours = Tool(
                "opsloop",
                f"{ours_url}/experiments/{ours_exp}",
                "#runs-table tbody tr",
                "#filter",
                expected,
            )
            peer = Tool(
                "mlflow",
                f"{peer_url}/#/experiments/{peer_exp}/runs?workflowType=machine_learning",
                ".ag-pinned-left-cols-container .ag-row",
                '[data-testid="search-box"]',
                expected,
            )
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--headless", "--no-sandbox", "--disable-background-networking"],
                )
                results: dict[str, tuple[float, float, float]] = {}
                for tool in (ours, peer):
                    results[tool.name] = measure(browser, tool, args.repeat)
                browser.close()
            labels = (
                "runs table, first render (cold cache)",
                "runs table, first render (warm, median)",
                f"apply filter {FILTER!r}",
            )
            for index, label in enumerate(labels):
                report(label, results["opsloop"][index], results["mlflow"][index])
        finally:
            for proc in servers:
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()
