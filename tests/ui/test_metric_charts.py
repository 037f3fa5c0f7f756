"""Metric charts for metrics logged once, system metrics and the compare page's axis picker."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from opsloop import Client
from tests.conftest import LiveServer
from tests.ui.conftest import BrowserPage


@dataclass
class Trials:
    url: str
    run_ids: list[str]


@pytest.fixture(scope="module")
def trials(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trials]:
    """Three tuning trials: best_auc and n_trees logged once each, loss per epoch, CPU sampled."""
    folder = tmp_path_factory.mktemp("charts")
    with LiveServer(f"sqlite:///{folder / 'charts.db'}", str(folder / "blobs")) as server:
        client = Client(server_url=server.url)
        exp = client.set_experiment("tuning").experiment_id
        run_ids = []
        for trial, depth in enumerate((3, 5, 8)):
            run_id = client.create_run(exp, run_name=f"trial-{trial}", capture_env=False)
            run_id = run_id.info.run_id
            client.log_params(run_id, {"max_depth": depth, "criterion": "gini", "seed": 7})
            client.log_metric(run_id, "best_auc", 0.8 + depth / 100)
            client.log_metric(run_id, "n_trees", -5.0 if trial == 0 else 10.0 * depth)
            for epoch in range(4):
                client.log_metric(run_id, "loss", 1.0 / (epoch + depth), step=epoch)
                client.log_metric(
                    run_id, "system/cpu_utilization_percentage", 40.0 + epoch, step=epoch
                )
            client.end_run(run_id)
            run_ids.append(run_id)
        yield Trials(server.url, run_ids)
        client.close()


def test_a_metric_logged_once_shows_its_value_and_system_metrics_have_their_own_section(
    ui: BrowserPage, trials: Trials
) -> None:
    ui.page.goto(f"{trials.url}/runs/{trials.run_ids[1]}")
    ui.page.wait_for_selector('#run-page[data-charts-ready="true"]')
    once = ui.page.locator('#chart-grid figure.chart[data-key="best_auc"]')
    assert once.get_attribute("data-kind") == "value"
    assert once.locator(".metric-value").inner_text() == "0.85"
    assert "step 0" in once.inner_text()
    assert once.locator("svg").count() == 0  # no empty frame

    loss = ui.page.locator('#chart-grid figure.chart[data-key="loss"]')
    assert loss.get_attribute("data-kind") == "line"
    assert loss.locator("path.series").get_attribute("data-points") == "4"

    system = ui.page.locator("#system-metrics")
    assert system.is_visible()
    cpu = system.locator('figure.chart[data-key="system/cpu_utilization_percentage"]')
    assert cpu.get_attribute("data-kind") == "line"
    assert ui.page.locator('#chart-grid figure.chart[data-key^="system/"]').count() == 0


def test_compare_draws_one_bar_per_run_for_metrics_logged_once(
    ui: BrowserPage, trials: Trials
) -> None:
    query = "&".join(f"run={run_id}" for run_id in trials.run_ids)
    ui.page.goto(f"{trials.url}/compare?{query}")
    ui.page.wait_for_selector('#compare-page[data-charts-ready="true"]')
    bars = ui.page.locator('#chart-grid figure.chart[data-key="best_auc"]')
    assert bars.get_attribute("data-kind") == "bars"
    rows = bars.locator(".bar-row")
    assert rows.count() == 3
    assert rows.locator(".num").all_inner_texts() == ["0.83", "0.85", "0.88"]
    # A negative value is drawn left of zero, not off the track.
    widths = bars.locator(".bar-track i").evaluate_all("els => els.map(e => e.style.width)")
    assert all(w.endswith("%") and float(w[:-1]) <= 100 for w in widths)
    negative = ui.page.locator('figure.chart[data-key="n_trees"] .bar-row').first
    assert negative.locator(".num").inner_text() == "-5"

    loss = ui.page.locator('#chart-grid figure.chart[data-key="loss"] path.series')
    assert loss.count() == 3
    assert ui.page.locator("#system-metrics figure.chart").count() == 1


def test_parallel_coordinates_start_on_what_differs_and_the_user_picks_axes(
    ui: BrowserPage, trials: Trials
) -> None:
    query = "&".join(f"run={run_id}" for run_id in trials.run_ids)
    ui.page.goto(f"{trials.url}/compare?{query}")
    names = ui.page.locator("#parcoords text.axis-name")

    def axes() -> set[str]:  # the label's own text, without its <title> tooltip
        return set(names.evaluate_all("els => els.map(e => e.firstChild.nodeValue)"))

    # criterion and seed are the same in every run: not drawn until asked for.
    assert axes() == {"max_depth", "best_auc", "loss", "n_trees"}
    ui.page.locator(".axis-picker summary").click()
    ui.page.check('#parcoords-axes input[value="p:seed"]')
    ui.page.uncheck('#parcoords-axes input[value="m:loss"]')
    assert axes() == {"max_depth", "seed", "best_auc", "n_trees"}
    assert ui.page.locator("#parcoords path").count() == 3
    # System metrics are not offered as axes.
    assert ui.page.locator('#parcoords-axes input[value^="m:system/"]').count() == 0
