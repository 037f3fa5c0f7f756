"""The monitor pages in a real browser: the loop stage of each monitor, an alert acknowledged and
resolved with the page's buttons, and a check's drift report with a plot per column."""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    weak_model: Any,  # noqa: F811 - the registry fixtures, imported above
    strong_model: Any,  # noqa: F811
    cancer: Any,  # noqa: F811
) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("monitors-ui")
    with LiveServer(f"sqlite:///{folder / 'ui.db'}", str(folder / "blobs")) as live:
        client = Client(server_url=live.url)
        register_two(client, weak_model, strong_model, cancer)
        cancer.to_csv(folder / "cancer.csv", index=False)
        client.data.add(str(folder / "cancer.csv"), name="cancer")
        client.data.push("cancer@1")
        client.deployments.deploy("cancer-clf@2", name="clf")
        client.monitors.create("clf-watch", "clf", "cancer@1", target="target",
                               window={"by": "count", "size": 20, "min_rows": 30})  # fmt: skip
        for records in (sample(cancer, 50), shifted(cancer, 50)):
            for i in range(0, 50, 5):
                client.deployments.predict("clf", records[i : i + 5])
            client.monitors.check("clf-watch")
        yield live.url
        client.close()


def test_monitor_pages_and_alert_buttons(ui: BrowserPage, server: str) -> None:
    response = ui.page.goto(server + "/monitors")
    assert response is not None and response.ok
    row = ui.page.locator("#monitors tbody tr").first.inner_text()
    assert "clf-watch" in row and "alerting" in row
    ui.page.click("#monitors a[href='/monitors/clf-watch']")
    ui.page.wait_for_url("**/monitors/clf-watch")
    alert = ui.page.locator("#alerts tbody tr").first
    assert "firing" in alert.inner_text() and "dataset_drift" in alert.inner_text()
    alert.locator("button.ack").click()
    ui.page.wait_for_load_state()
    assert "acknowledged" in ui.page.locator("#alerts tbody tr").first.inner_text()
    ui.page.locator("#alerts tbody tr").first.locator("button.resolve").click()
    ui.page.wait_for_load_state()
    assert "resolved" in ui.page.locator("#alerts tbody tr").first.inner_text()
    checks = ui.page.locator("#checks tbody tr")
    assert checks.count() >= 2 and "alerting" in checks.first.inner_text()
    checks.first.locator("a", has_text="drift report").click()
    ui.page.wait_for_url("**/report.html")
    assert ui.page.locator("svg").count() == 5  # four features and the prediction
    assert "drift" in ui.page.locator("table.summary").inner_text()
