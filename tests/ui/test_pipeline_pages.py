"""The pipelines page in a real browser: triggers with what they fire on, a webhook trigger
fired with the page's button and run by the server's scheduler, its firing linked to the run;
the latest pipeline runs, and a run's DAG drawn with each step's state."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsloop import Client
from tests.conftest import LiveServer
from tests.ui.conftest import BrowserPage


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("pipelines-ui")
    with LiveServer(f"sqlite:///{folder / 'ui.db'}", str(folder / "blobs")) as live:
        client = Client(server_url=live.url)
        client.triggers.create("nightly", "tests.pipelines.example:training", "cron",
                               cron="0 2 * * *")  # fmt: skip
        client.triggers.create("hook", "tests.pipelines.example:training", "webhook",
                               params={"rows": 150})  # fmt: skip
        yield live.url
        client.close()


def test_pipelines_page_fires_a_trigger(ui: BrowserPage, server: str) -> None:
    response = ui.page.goto(server + "/pipelines")
    assert response is not None and response.ok
    rows = ui.page.locator("#triggers tbody tr")
    assert rows.count() == 2 and "0 2 * * *" in ui.page.locator("#trigger-nightly").inner_text()
    ui.page.locator("#trigger-hook button.fire").click()
    ui.page.wait_for_load_state()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the server's scheduler runs it within a few seconds
        ui.page.goto(server + "/pipelines")
        text = ui.page.locator("#firings").inner_text()
        if "succeeded" in text or "failed" in text:
            break
        time.sleep(0.5)
    assert "succeeded" in text and "fired from the web UI" in text
    ui.page.locator("#firings a").first.click()
    ui.page.wait_for_url("**/runs/*")
    assert "training" in ui.page.content()


def test_a_pipeline_runs_dag(ui: BrowserPage, server: str) -> None:
    client = Client(server_url=server)
    failed = client.pipelines.run("tests.pipelines.example:broken_chain")
    client.close()
    ui.page.goto(server + "/pipelines")
    ui.page.locator(f"#pipeline-runs a[href='/pipelines/runs/{failed.run_id}']").click()
    ui.page.wait_for_url(f"**/pipelines/runs/{failed.run_id}")
    assert ui.page.locator("#run-status").inner_text() == "FAILED"
    boxes = ui.page.locator("#dag a.step")
    assert boxes.count() == 3
    states = {b.get_attribute("data-step"): b.get_attribute("data-status") for b in boxes.all()}
    assert states == {"load": "FINISHED", "explode": "FAILED", "report": "SKIPPED"}
    assert ui.page.locator("#dag path.edge").count() == 2
    x = {
        n: float(ui.page.locator(f"#dag a.step[data-step='{n}'] rect").get_attribute("x") or 0)
        for n in ("load", "explode")
    }
    assert x["load"] < x["explode"]  # a column per rank, left to right
    assert "the cluster caught fire" in ui.page.locator("#steps").inner_text()
    ui.page.locator("#dag a.step[data-step='explode']").click()
    ui.page.wait_for_url("**/runs/*")
    ui.page.goto(f"{server}/runs/{failed.run_id}")  # the pipeline's own run links its DAG
    ui.page.locator("#pipeline-dag").click()
    ui.page.wait_for_url(f"**/pipelines/runs/{failed.run_id}")


def test_a_running_pipelines_page_follows_it(ui: BrowserPage, server: str) -> None:
    client = Client(server_url=server)
    started = client.pipelines.run(
        "tests.pipelines.example:reporting", params={"seconds": 2.5}, wait=False
    )
    client.close()
    ui.page.goto(f"{server}/pipelines/runs/{started.run_id}")
    assert ui.page.locator("#run-status").inner_text() == "RUNNING"
    step = ui.page.locator("#dag a.step[data-step='self_reporting']")
    assert step.get_attribute("data-status") in {"PENDING", "RUNNING"}
    ui.page.wait_for_selector("#run-status.FINISHED", timeout=30_000)  # the page reloaded itself
    step = ui.page.locator("#dag a.step[data-step='self_reporting']")
    assert step.get_attribute("data-status") == "FINISHED"


@pytest.mark.filterwarnings("ignore:(left|right) warned:UserWarning")  # the steps warn on purpose
def test_a_failed_steps_logs_are_open_on_its_runs_page(ui: BrowserPage, server: str) -> None:
    client = Client(server_url=server)
    failed = client.pipelines.run("tests.pipelines.example:talking_then_failing")
    finished = client.pipelines.run("tests.pipelines.example:talking", params={"lines": 2})
    client.close()
    ui.page.goto(f"{server}/pipelines/runs/{failed.run_id}")
    logs = ui.page.locator("#logs details.step-logs")
    assert {d.get_attribute("data-step") for d in logs.all()} == {"chatty", "chatty_2",
                                                                  "fails_loudly"}  # fmt: skip
    failing = ui.page.locator("#logs details[data-step='fails_loudly']")
    assert failing.get_attribute("open") is not None  # the failed step's logs, unfolded
    assert "about to fail after 4 lines" in failing.inner_text()
    left = ui.page.locator("#logs details[data-step='chatty']")
    assert left.get_attribute("open") is None and not left.locator("pre").is_visible()
    left.locator("summary").click()
    assert "left line 1" in left.locator("pre").inner_text()
    ui.page.goto(f"{server}/pipelines/runs/{finished.run_id}")
    box = ui.page.locator("#clean-env")  # reproduce: in a clean environment, or here
    assert box.is_visible() and not box.is_checked()
