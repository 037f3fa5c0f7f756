"""A monitor's charts in a real browser: drift share and each quality metric over its checks,
a dot per check, with the alert rules' thresholds as dashed lines at the right height."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsloop import Client
from tests.conftest import LiveServer
from tests.monitoring.test_monitors import sample
from tests.monitoring.test_monitors import shifted
from tests.registry.conftest import cancer  # noqa: F401
from tests.registry.conftest import strong_model  # noqa: F401
from tests.registry.conftest import weak_model  # noqa: F401
from tests.serving.conftest import register_two
from tests.ui.conftest import BrowserPage

ROWS = 30


def _traffic(client: Client, records: list[dict[str, Any]], labels: list[int]) -> None:
    answers = {}
    for record, label in zip(records, labels, strict=True):
        answers[client.deployments.predict("clf", [record])["request_id"]] = label
    client.deployments.feedback("clf", answers)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    weak_model: Any,  # noqa: F811 - the registry fixtures, imported above
    strong_model: Any,  # noqa: F811
    cancer: Any,  # noqa: F811
) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("monitor-charts-ui")
    with LiveServer(f"sqlite:///{folder / 'ui.db'}", str(folder / "blobs")) as live:
        client = Client(server_url=live.url)
        register_two(client, weak_model, strong_model, cancer)
        cancer.to_csv(folder / "cancer.csv", index=False)
        client.data.add(str(folder / "cancer.csv"), name="cancer")
        client.data.push("cancer@1")
        client.deployments.deploy("cancer-clf@2", name="clf")
        rules = [
            {"name": "data-drift", "metric": "dataset_drift", "threshold": 1,
             "severity": "critical"},
            {"name": "quality", "metric": "accuracy", "op": "<", "threshold": 0.9},
            {"name": "slow", "metric": "latency_p99_ms", "op": ">", "threshold": 5000,
             "severity": "info"},
        ]  # fmt: skip
        client.monitors.create("clf-charts", "clf", "cancer@1", target="target", rules=rules,
                               window={"by": "count", "size": ROWS, "min_rows": ROWS})  # fmt: skip
        # on a deployment no traffic reaches: the server's own scheduler checks it as soon as
        # it is made, and must find nothing to measure, however slow this set-up is
        client.deployments.deploy("cancer-clf@2", name="quiet")
        client.monitors.create("idle", "quiet", "cancer@1", target="target")
        for seed in (1, 3):
            records = sample(cancer, ROWS, seed=seed)
            labels = cancer.sample(ROWS, random_state=seed)["target"].astype(int).tolist()
            _traffic(client, records, labels)
            client.monitors.check("clf-charts")
        truth = cancer.sample(ROWS, random_state=2)["target"].astype(int).tolist()
        _traffic(client, shifted(cancer, ROWS, seed=2), truth)
        client.monitors.check("clf-charts")
        yield live.url
        client.close()


def _figure(ui: BrowserPage, key: str) -> Any:
    return ui.page.locator(f'#monitor-charts figure.chart[data-key="{key}"]')


def test_drift_share_and_quality_over_checks_with_thresholds(ui: BrowserPage, server: str) -> None:
    response = ui.page.goto(server + "/monitors/clf-charts")
    assert response is not None and response.ok
    ui.page.wait_for_selector('#monitor-charts[data-charts-ready="true"]')
    keys = ui.page.locator("#monitor-charts figure.chart").evaluate_all(
        "els => els.map(e => e.dataset.key)"
    )
    assert keys[0] == "drift_share" and {"accuracy", "f1", "latency_p99_ms"} <= set(keys)
    checks = ui.page.locator("#checks tbody tr").count()  # ours, and any the scheduler ran
    assert checks >= 3 and f"{checks} checks" in ui.page.locator("#charts-note").inner_text()

    drift = _figure(ui, "drift_share")
    assert drift.get_attribute("data-kind") == "line"
    # a point a check that measured drift: ours, and any the server's scheduler ran meanwhile
    # (one it ran before the window filled has no drift share, and no point)
    shares = ui.page.locator("#checks tbody tr td:nth-child(4)").all_inner_texts()
    measured = sum(1 for share in shares if share.strip())
    assert measured >= 3
    assert drift.locator("path.series").get_attribute("data-points") == str(measured)
    dots = drift.locator("g.markers circle")
    assert dots.count() == measured
    heights = [float(y) for y in dots.evaluate_all("els => els.map(e => e.getAttribute('cy'))")]
    calm, moved = heights[0], heights[-1]  # the first check saw calm data, the last the shift
    line = drift.locator("line.reference")
    assert line.count() == 1 and line.get_attribute("data-value") == "0.5"  # the drift_share
    assert "data-drift" in line.get_attribute("data-label")
    level = float(line.get_attribute("y1"))
    assert moved < level < calm  # SVG y grows downwards: the shifted check is above the line
    assert (
        "data-drift: drift_share >= 0.5" in drift.locator("text.reference-label").text_content()
        or ""
    )

    accuracy = _figure(ui, "accuracy")
    labels = accuracy.locator("path.series").evaluate_all("els => els.map(e => e.dataset.label)")
    assert labels == ["accuracy (labelled)", "accuracy (estimated, CBPE)"]
    assert "estimated, CBPE" in accuracy.locator(".legend").inner_text()
    threshold = accuracy.locator("line.reference")
    assert threshold.get_attribute("data-value") == "0.9"
    assert (
        "quality: accuracy < 0.9" in accuracy.locator("text.reference-label").text_content() or ""
    )
    # A threshold far from every point still shows: the y range stretches to it.
    slow = _figure(ui, "latency_p99_ms").locator("line.reference")
    top = float(slow.get_attribute("y1"))
    assert 0 < top < 220
    latency_dots = _figure(ui, "latency_p99_ms").locator("g.markers circle")
    assert all(
        float(y) > top
        for y in latency_dots.evaluate_all("els => els.map(e => e.getAttribute('cy'))")
    )

    # Hover reads the values of the nearest check.
    box = drift.locator("svg").bounding_box()
    assert box is not None
    ui.page.mouse.move(box["x"] + box["width"] - 20, box["y"] + box["height"] / 2)
    tip = drift.locator(".tooltip").inner_text()
    assert float(re.search(r"drift share: ([\d.]+)", tip)[1]) >= 0.5  # type: ignore[index]

    # What was on the page before the charts is still there.
    assert ui.page.locator("#references tbody tr").count() == 1
    assert ui.page.locator("#alerts form input[name='csrf_token']").count() >= 1


def test_a_monitor_without_checks_says_so(ui: BrowserPage, server: str) -> None:
    ui.page.goto(server + "/monitors/idle")
    assert ui.page.locator("#monitor-charts").count() == 0
    assert "No check has measured" in ui.page.locator("#no-charts").inner_text()
