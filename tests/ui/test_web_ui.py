"""The web UI end to end in a real browser, against a live server with data logged by the SDK."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from opsloop import Client
from tests.conftest import LiveServer
from tests.ui.conftest import BrowserPage

STEPS = 20
XSS_NAME = "<script>window.__xss = 1</script>"
XSS_PARAM = '"><img src=x onerror="window.__xss = 1">'
XSS_TAG = '<svg onload="window.__xss = 1"></svg>'


@dataclass
class Demo:
    url: str
    client: Client
    experiment_id: str
    parent_id: str
    child_ids: list[str]
    artifact_run_id: str
    xss_run_id: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """A server holding an experiment with a sweep (parent + 3 children), artifacts and XSS bait."""
    folder = tmp_path_factory.mktemp("ui")
    with LiveServer(f"sqlite:///{folder / 'ui.db'}", str(folder / "blobs")) as server:
        client = Client(server_url=server.url)
        exp = client.set_experiment("ui-demo").experiment_id
        parent = client.create_run(exp, run_name="sweep", capture_env=False).info.run_id
        children = []
        for lr in (0.1, 0.01, 0.001):
            run_id = client.create_run(
                exp, run_name=f"lr-{lr}", parent_run_id=parent, capture_env=False
            ).info.run_id
            client.log_params(run_id, {"lr": lr, "optimizer": "sgd" if lr > 0.005 else "adam"})
            for step in range(STEPS):
                client.log_metrics(
                    run_id,
                    {"loss": math.exp(-lr * 10 * (step + 1)), "acc": min(0.99, 0.5 + lr * step)},
                    step=step,
                )
            client.end_run(run_id)
            children.append(run_id)
        client.end_run(parent)

        art = client.create_run(exp, run_name="with-artifacts").info.run_id
        _log_artifacts(client, art)
        client.end_run(art)

        xss = client.create_run(exp, run_name=XSS_NAME, tags={"note": XSS_TAG}, capture_env=False)
        client.log_param(xss.info.run_id, "payload", XSS_PARAM)
        client.log_metric(xss.info.run_id, "acc", 0.5)
        client.end_run(xss.info.run_id)
        yield Demo(server.url, client, exp, parent, children, art, xss.info.run_id)
        client.close()


def _log_artifacts(client: Client, run_id: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    figure, axes = plt.subplots(figsize=(3, 2))
    axes.plot([1, 2, 3], [3, 1, 2])
    client.log_figure(run_id, figure, "plots/curve.png")
    plt.close(figure)
    client.log_text(run_id, "hello from the run\n<b>not bold</b>\n", "notes/readme.txt")
    frame = pd.DataFrame({"feature": [0.1, 0.2, 0.3], "label": ["a", "b", "<i>c</i>"]})
    client.log_dataframe(run_id, frame, "predictions.parquet")


def _open(ui: BrowserPage, url: str) -> Any:
    response = ui.page.goto(url)
    assert response is not None
    return response


# -- runs table ------------------------------------------------------------------------------------
def test_runs_table_lists_runs_with_param_and_metric_columns(ui: BrowserPage, demo: Demo) -> None:
    _open(ui, f"{demo.url}/experiments")
    ui.page.get_by_role("link", name="ui-demo").click()
    ui.page.wait_for_url("**/experiments/*")
    rows = ui.page.locator("#runs-table tbody tr")
    rows.first.wait_for()  # count() does not wait for the new page
    assert rows.count() == 6  # parent, 3 children, artifacts run, xss run
    headers = ui.page.locator("#runs-table thead th").all_inner_texts()
    assert {"lr", "optimizer", "loss", "acc"} <= {h.strip(" ▲▼") for h in headers}
    child_row = ui.page.locator(f'tr[data-run-id="{demo.child_ids[0]}"]')
    assert child_row.locator('[data-metric="acc"]').inner_text() == "0.99"
    assert child_row.locator(".child-mark").count() == 1


def test_filter_narrows_the_runs_and_a_bad_filter_shows_the_parser_message(
    ui: BrowserPage, demo: Demo
) -> None:
    _open(ui, f"{demo.url}/experiments/{demo.experiment_id}")
    ui.page.fill("#filter", "metrics.acc > 0.6 and params.optimizer = 'sgd'")
    ui.page.press("#filter", "Enter")
    ui.page.wait_for_url(re.compile(r"filter="))
    names = ui.page.locator("#runs-table tbody .run-link").all_inner_texts()
    assert sorted(names) == ["lr-0.01", "lr-0.1"]
    assert "of 2 runs" in ui.page.inner_text("#run-count")

    ui.allow_console("status of 400")
    ui.page.fill("#filter", "metrics.acc >> 1")
    ui.page.press("#filter", "Enter")
    message = ui.page.locator("#filter-error").inner_text()
    assert "column" in message and "^" in message
    assert ui.page.input_value("#filter") == "metrics.acc >> 1"  # the user's text is kept


def test_clicking_a_metric_header_sorts_and_a_second_click_flips(
    ui: BrowserPage, demo: Demo
) -> None:
    _open(ui, f"{demo.url}/experiments/{demo.experiment_id}")
    ui.page.locator("#runs-table thead a", has_text=re.compile(r"^loss")).click()
    ui.page.wait_for_url(re.compile(r"order="))
    losses = ui.page.locator('#runs-table tbody [data-metric="loss"]').all_inner_texts()
    values = [float(v) for v in losses if v]
    assert values == sorted(values, reverse=True) and len(values) == 3
    ui.page.locator("#runs-table thead a", has_text=re.compile(r"^loss")).click()
    ui.page.wait_for_url(re.compile(r"ASC"))
    values = [
        float(v)
        for v in ui.page.locator('#runs-table tbody [data-metric="loss"]').all_inner_texts()
        if v
    ]
    assert values == sorted(values)


# -- run page --------------------------------------------------------------------------------------
def test_run_page_draws_a_chart_with_every_logged_point(ui: BrowserPage, demo: Demo) -> None:
    _open(ui, f"{demo.url}/runs/{demo.child_ids[1]}")
    ui.page.wait_for_selector('#run-page[data-charts-ready="true"]')
    for key in ("loss", "acc"):
        path = ui.page.locator(f'figure.chart[data-key="{key}"] path.series')
        assert path.get_attribute("data-points") == str(STEPS)
        assert path.get_attribute("d").count("L") == STEPS - 1
    assert ui.page.locator("#params-table").inner_text().count("0.01") == 1
    assert "lr-0.01" in ui.page.title()

    # The controls redraw without errors: log scale, smoothing, wall time on x.
    ui.page.check("#log-scale")
    ui.page.locator("#smoothing").fill("0.8")
    ui.page.select_option("#x-axis", "relative")
    assert ui.page.locator('figure.chart[data-key="loss"] path.raw').count() == 1
    ui.page.locator('figure.chart[data-key="loss"] svg').hover()
    assert ui.page.locator('figure.chart[data-key="loss"] .tooltip').is_visible()


def test_parent_run_lists_its_children_and_links_to_compare_them(
    ui: BrowserPage, demo: Demo
) -> None:
    _open(ui, f"{demo.url}/runs/{demo.parent_id}")
    assert ui.page.locator("#children-table tbody tr").count() == 3
    ui.page.click("#compare-children")
    ui.page.wait_for_selector('#compare-page[data-charts-ready="true"]')
    assert ui.page.locator('figure.chart[data-key="acc"] path.series').count() == 3


def test_artifacts_preview_images_text_and_tables(ui: BrowserPage, demo: Demo) -> None:
    _open(ui, f"{demo.url}/runs/{demo.artifact_run_id}")
    ui.page.get_by_role("link", name="plots/curve.png").click()
    image = ui.page.locator("#preview img")
    image.wait_for()
    # A property check, not wait_for_function: a string predicate is eval'd in the page, which
    # its Content-Security-Policy (no unsafe-eval) refuses in recent Playwright releases.
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") > 100

    ui.page.go_back()
    ui.page.get_by_role("link", name="notes/readme.txt").click()
    assert "<b>not bold</b>" in ui.page.locator("#preview pre").inner_text()

    ui.page.go_back()
    ui.page.get_by_role("link", name="predictions.parquet").click()
    table = ui.page.locator("#preview-table")
    table.wait_for()
    assert table.locator("thead th").all_inner_texts() == ["feature", "label"]
    assert table.locator("tbody tr").count() == 3
    assert "<i>c</i>" in table.inner_text()

    ui.page.go_back()
    repro = ui.page.locator("#reproducibility").inner_text()
    assert "python" in repro


# -- compare ---------------------------------------------------------------------------------------
def test_compare_two_selected_runs(ui: BrowserPage, demo: Demo) -> None:
    _open(ui, f"{demo.url}/experiments/{demo.experiment_id}")
    button = ui.page.locator("#compare-button")
    assert button.is_disabled()
    for run_id in demo.child_ids[:2]:
        ui.page.check(f'input[name="run"][value="{run_id}"]')
    assert button.inner_text() == "Compare 2 runs"
    button.click()
    ui.page.wait_for_selector('#compare-page[data-charts-ready="true"]')
    loss = ui.page.locator('figure.chart[data-key="loss"] path.series')
    assert loss.count() == 2
    assert {loss.nth(i).get_attribute("data-points") for i in range(2)} == {str(STEPS)}
    assert ui.page.locator("#parcoords path").count() == 2

    lr_row = ui.page.locator("#diff-table tr", has_text="params.lr")
    assert "differs" in (lr_row.get_attribute("class") or "")
    ui.page.check("#only-diff")
    assert (
        ui.page.locator("#diff-table tr.same").first.is_hidden()
        or ui.page.locator("#diff-table tr.same").count() == 0
    )


# -- bad input -------------------------------------------------------------------------------------
def test_user_strings_are_escaped_everywhere(ui: BrowserPage, demo: Demo) -> None:
    pages = [
        f"/experiments/{demo.experiment_id}",
        f"/runs/{demo.xss_run_id}",
        f"/compare?run={demo.xss_run_id}&run={demo.child_ids[0]}",
        "/search?q=script",
    ]
    for path in pages:
        _open(ui, demo.url + path)
        ui.page.wait_for_load_state("networkidle")
        assert ui.page.evaluate("window.__xss") is None, path
        assert XSS_NAME in ui.page.inner_text("main"), path
    _open(ui, f"{demo.url}/runs/{demo.xss_run_id}")
    assert XSS_PARAM in ui.page.inner_text("#params-table")
    assert XSS_TAG in ui.page.inner_text("#tags-table")


@pytest.mark.parametrize(
    "path",
    [
        "/runs/no-such-run",
        "/runs/0123456789abcdef0123456789abcdef",
        "/experiments/no-such-exp",
        "/no/such/page",
    ],
)
def test_unknown_ids_get_a_404_page(ui: BrowserPage, demo: Demo, path: str) -> None:
    ui.allow_console("status of 404")
    response = _open(ui, demo.url + path)
    assert response.status == 404
    assert "404" in ui.page.inner_text("h1")


# -- shell -----------------------------------------------------------------------------------------
def test_theme_toggle_persists_and_search_finds_runs(ui: BrowserPage, demo: Demo) -> None:
    _open(ui, f"{demo.url}/experiments")
    before = ui.page.evaluate("document.documentElement.dataset.theme")
    ui.page.click("#theme-toggle")
    after = ui.page.evaluate("document.documentElement.dataset.theme")
    assert {before, after} == {"light", "dark"}
    ui.page.reload()
    assert ui.page.evaluate("document.documentElement.dataset.theme") == after

    ui.page.fill(".global-search input", "lr-0.00")
    ui.page.press(".global-search input", "Enter")
    ui.page.get_by_role("link", name="lr-0.001").click()
    assert ui.page.url.endswith(f"/runs/{demo.child_ids[2]}")


def test_a_running_run_updates_live(ui: BrowserPage, demo: Demo) -> None:
    client = demo.client
    run_id = client.create_run(demo.experiment_id, run_name="live", capture_env=False).info.run_id
    client.log_metric(run_id, "loss", 1.0, step=0)
    client.flush(run_id)
    _open(ui, f"{demo.url}/runs/{run_id}")
    ui.page.wait_for_selector('#run-page[data-charts-ready="true"]')
    for step in range(1, 5):
        client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
    client.end_run(run_id)
    ui.page.wait_for_selector('#run-status:text("FINISHED")', timeout=15_000)
    ui.page.wait_for_selector('figure.chart[data-key="loss"] path.series[data-points="5"]')
    assert ui.page.locator('#latest-metrics [data-metric="loss"]').inner_text() == "0.2"


def test_token_server_sends_browsers_to_the_login_page(ui: BrowserPage, tmp_path: Path) -> None:
    with LiveServer(
        f"sqlite:///{tmp_path / 't.db'}", str(tmp_path / "b"), token="s3cret"
    ) as server:
        client = Client(server_url=server.url, token="s3cret")
        exp = client.set_experiment("secured").experiment_id
        run_id = client.create_run(exp, run_name="guarded", capture_env=False).info.run_id
        client.log_metric(run_id, "loss", 0.5, step=0)
        client.end_run(run_id)
        client.close()
        assert httpx.get(f"{server.url}/api/experiments").status_code == 401

        _open(ui, f"{server.url}/runs/{run_id}")
        assert "/login" in ui.page.url
        ui.allow_console("status of 403")
        ui.page.fill('input[name="token"]', "wrong")
        ui.page.click('button[type="submit"]')
        assert "not valid" in ui.page.inner_text("main")
        ui.page.fill('input[name="token"]', "s3cret")
        ui.page.click('button[type="submit"]')
        ui.page.wait_for_url(f"{server.url}/runs/{run_id}")
        ui.page.wait_for_selector(
            '#run-page[data-charts-ready="true"]'
        )  # /api calls carry the cookie
        loss = ui.page.locator('figure.chart[data-key="loss"]')
        assert loss.get_attribute("data-kind") == "value"  # logged once: shown as its value
        assert loss.locator(".metric-value").inner_text() == "0.5"
