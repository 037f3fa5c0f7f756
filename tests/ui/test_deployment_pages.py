"""The deployment pages in a real browser: what is served, a rollback with its alert in the
history, and the latest predictions with their joined ground truth."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from opsloop import Client
from tests.conftest import LiveServer
from tests.registry.conftest import cancer  # noqa: F401
from tests.registry.conftest import strong_model  # noqa: F401
from tests.registry.conftest import weak_model  # noqa: F401
from tests.serving.conftest import COLUMNS
from tests.serving.conftest import register_two
from tests.ui.conftest import BrowserPage


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    weak_model: Any,  # noqa: F811 - the registry fixtures, imported above
    strong_model: Any,  # noqa: F811
    cancer: Any,  # noqa: F811
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("deployments-ui")
    with LiveServer(f"sqlite:///{folder / 'ui.db'}", str(folder / "blobs")) as live:
        client = Client(server_url=live.url)
        register_two(client, strong_model, weak_model, cancer)
        client.deployments.deploy("cancer-clf@1", name="clf")
        for _, row in cancer.head(5).iterrows():
            answer = client.deployments.predict("clf", [row[COLUMNS].to_dict()])
            client.deployments.feedback("clf", {answer["request_id"]: int(row["target"])})
        client.deployments.deploy("cancer-clf@2", name="clf", canary=20)
        client.deployments.rollback("clf", reason="<b>too slow</b>")
        yield live.url
        client.close()


def test_deployment_pages(ui: BrowserPage, server: str) -> None:
    response = ui.page.goto(server + "/deployments")
    assert response is not None and response.ok
    row = ui.page.locator("#deployments tbody tr").first.inner_text()
    assert "clf" in row and "all traffic to v1" in row
    ui.page.click("#deployments a[href='/deployments/clf']")
    ui.page.wait_for_url("**/deployments/clf")
    assert "all traffic to v1" in ui.page.locator("#traffic").inner_text()
    history = ui.page.locator("#events").inner_text()
    assert "rollback" in history and "<b>too slow</b>" in history  # shown as text
    predictions = ui.page.locator("#predictions tbody tr")
    assert predictions.count() == 5
    assert predictions.first.locator("td").nth(4).inner_text() in ("0", "1")  # joined label
