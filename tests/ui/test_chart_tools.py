"""Charts as MLflow users expect them: each chart's own x axis and log scale, each run's final
value as a bar, a param against a metric as a scatter, and logged figures shown inline."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from opsloop import Client
from tests.conftest import LiveServer
from tests.ui.conftest import BrowserPage


@dataclass
class Trained:
    url: str
    run_ids: list[str]

    def compare_url(self) -> str:
        return f"{self.url}/compare?" + "&".join(f"run={r}" for r in self.run_ids)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = tmp_path_factory.mktemp("chart-tools")
    with LiveServer(f"sqlite:///{folder / 'c.db'}", str(folder / "blobs")) as server:
        client = Client(server_url=server.url)
        exp = client.set_experiment("tools").experiment_id
        run_ids = []
        for i, (lr, optimizer) in enumerate(((0.1, "sgd"), (0.01, "adam"), (0.001, "adam"))):
            run_id = client.create_run(exp, run_name=f"run-{i}", capture_env=False).info.run_id
            client.log_params(run_id, {"lr": lr, "optimizer": optimizer})
            for step in range(10):
                client.log_metrics(
                    run_id, {"loss": (i + 1) / (step + 1), "acc": 0.5 + step * lr}, step=step
                )
            client.log_metric(run_id, "final_auc", 0.7 + i / 10)
            run_ids.append(run_id)
        figure, axes = plt.subplots(figsize=(3, 2))
        axes.plot([0, 1, 2], [2, 0, 1])
        client.log_figure(run_ids[0], figure, "plots/roc.png")
        plt.close(figure)
        for run_id in run_ids:
            client.end_run(run_id)
        yield Trained(server.url, run_ids)
        client.close()


def _texts(ui: BrowserPage, selector: str) -> list[str]:
    """SVG text has no innerText: its text content."""
    return list(ui.page.locator(selector).evaluate_all("els => els.map(e => e.textContent)"))


def _x_labels(ui: BrowserPage, key: str) -> list[str]:
    return _texts(ui, f'figure.chart[data-key="{key}"] g.axis > text')


def test_each_chart_has_its_own_x_axis_and_log_scale(ui: BrowserPage, trained: Trained) -> None:
    ui.page.goto(f"{trained.url}/runs/{trained.run_ids[0]}")
    ui.page.wait_for_selector('#run-page[data-charts-ready="true"]')
    loss = ui.page.locator('figure.chart[data-key="loss"]')
    acc = ui.page.locator('figure.chart[data-key="acc"]')
    assert not any(t.endswith("s") for t in _x_labels(ui, "loss"))
    loss.locator(".chart-x").select_option("relative")
    assert any(t.endswith("s") for t in _x_labels(ui, "loss"))  # seconds since the start
    assert not any(t.endswith("s") for t in _x_labels(ui, "acc"))  # its neighbour kept steps

    before = loss.locator("path.series").get_attribute("d")
    loss.locator(".chart-log").check()
    assert loss.locator("path.series").get_attribute("d") != before
    assert "1" in _x_labels(ui, "loss")  # a decade tick on y
    # The page's controls still apply to every chart; the chart's own choice wins for x.
    ui.page.locator("#smoothing").fill("0.6")
    assert acc.locator("path.raw").count() == 1 and loss.locator("path.raw").count() == 1
    assert any(t.endswith("s") for t in _x_labels(ui, "loss"))
    # A metric logged once is a value: no tools, no empty frame.
    once = ui.page.locator('figure.chart[data-key="final_auc"]')
    assert once.get_attribute("data-kind") == "value" and once.locator(".chart-tools").is_hidden()


def test_logged_figures_are_shown_with_the_charts(ui: BrowserPage, trained: Trained) -> None:
    ui.page.goto(f"{trained.url}/runs/{trained.run_ids[0]}")
    image = ui.page.locator('#run-images img[alt="plots/roc.png"]')
    image.scroll_into_view_if_needed()
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") > 100
    ui.page.goto(f"{trained.url}/runs/{trained.run_ids[1]}")
    assert ui.page.locator("#run-images").count() == 0


def test_compare_draws_final_values_as_bars(ui: BrowserPage, trained: Trained) -> None:
    ui.page.goto(trained.compare_url())
    ui.page.wait_for_selector('#compare-page[data-charts-ready="true"]')
    loss = ui.page.locator('figure.chart[data-key="loss"]')
    assert loss.get_attribute("data-kind") == "line"
    loss.locator(".chart-bars").check()
    assert loss.get_attribute("data-kind") == "final"
    assert loss.locator(".bar-row .num").all_inner_texts() == ["0.1", "0.2", "0.3"]
    assert loss.locator(".bar-row").evaluate_all("rows => rows.map(r => r.dataset.label)") == [
        "run-0",
        "run-1",
        "run-2",
    ]
    loss.locator(".chart-bars").uncheck()
    assert loss.locator("path.series").count() == 3


def test_compare_plots_a_param_against_a_metric(ui: BrowserPage, trained: Trained) -> None:
    ui.page.goto(trained.compare_url())
    scatter = ui.page.locator("#scatter")
    assert scatter.get_attribute("data-kind") == "scatter"
    assert ui.page.input_value("#scatter-x") == "p:lr"  # a param that differs
    assert scatter.locator("circle").count() == 3
    ui.page.select_option("#scatter-x", "p:optimizer")  # text: drawn as categories
    ui.page.select_option("#scatter-y", "m:final_auc")
    labels = _texts(ui, "#scatter g.axis > text")
    assert {"adam", "sgd"} <= set(labels)
    tips = _texts(ui, "#scatter circle title")
    assert "run-1: params.optimizer adam, metrics.final_auc 0.8" in tips
    ui.page.check("#scatter-log")
    assert scatter.locator("circle").count() == 3
