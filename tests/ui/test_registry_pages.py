"""The registry's pages in a real browser: models, a model with its alias history and gate
verdicts, a version with its card, evaluations (plots as sandboxed SVG images) and lineage."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from opsloop import Client
from tests.conftest import LiveServer
from tests.registry.conftest import COLUMNS
from tests.registry.conftest import policy
from tests.registry.conftest import train
from tests.ui.conftest import BrowserPage

XSS = '<img src=x onerror="window.__xss = 1">'


@dataclass
class Registry:
    url: str
    client: Client


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A server with a dataset, a model with two versions, a promotion and a rejection."""
    from sklearn.datasets import load_breast_cancer

    folder = tmp_path_factory.mktemp("registry-ui")
    frame = load_breast_cancer(as_frame=True).frame[[*COLUMNS, "target"]]
    frame.to_csv(folder / "cancer.csv", index=False)
    with LiveServer(f"sqlite:///{folder / 'ui.db'}", str(folder / "blobs")) as server:
        client = Client(server_url=server.url)
        client.data.add(folder / "cancer.csv", name="cancer", push=True)
        example = frame.drop(columns=["target"]).head()
        client.models.register("clf", train(frame, 10.0), input_example=example, description=XSS)
        client.models.register("clf", train(frame, 0.001), input_example=example)
        client.models.update_version("clf@1", card={"intended_use": f"demo {XSS}"})
        gate = policy(slices=["mean radius"])
        client.models.promote("clf@1", "champion", policy=gate)
        client.models.promote("clf@2", "champion", policy=gate)
        client.models.evaluate("clf@1", "cancer@1", target="target", slices=["mean radius"])
        yield Registry(server.url, client)
        client.close()


def _open(ui: BrowserPage, url: str) -> Any:
    response = ui.page.goto(url)
    assert response is not None and response.ok, url
    return response


def test_models_page_lists_models_with_aliases(ui: BrowserPage, registry: Registry) -> None:
    _open(ui, registry.url + "/models")
    row = ui.page.locator("#models-table tbody tr").first
    assert row.locator("td").first.inner_text() == "clf"
    assert "champion → 1" in row.inner_text()
    ui.page.click("text=clf")
    ui.page.wait_for_url("**/models/clf")


def test_model_page_shows_versions_and_verdicts(ui: BrowserPage, registry: Registry) -> None:
    _open(ui, registry.url + "/models/clf")
    assert ui.page.locator("#versions-table tbody tr").count() == 2
    history = ui.page.locator("#history-table > tbody > tr")
    assert history.count() == 2
    assert "rejected" in history.nth(0).inner_text() and "promoted" in history.nth(1).inner_text()
    history.nth(0).locator("summary").click()
    verdict = history.nth(0).locator(".verdict-table")
    assert "FAIL" in verdict.inner_text() and "f1 beats the champion" in verdict.inner_text()


def test_version_page_has_card_evaluations_plots_and_lineage(
    ui: BrowserPage, registry: Registry
) -> None:
    _open(ui, registry.url + "/models/clf/versions/champion")
    assert ui.page.locator("h1").inner_text().startswith("clf@1")
    assert ui.page.locator("#signature-table tbody tr").count() == len(COLUMNS)
    assert ui.page.locator(".evaluation").count() >= 2
    first_plot = ui.page.locator(".plots img").first
    first_plot.scroll_into_view_if_needed()
    ui.page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=first_plot.element_handle()
    )
    assert "on cancer@1" in ui.page.locator(".evaluation h3").first.inner_text()
    assert ui.page.locator("#lineage .lineage li").count() >= 1
    assert ui.page.evaluate("window.__xss") is None  # the description and card were escaped
    assert XSS in ui.page.locator("#card").inner_text()


def test_plots_are_served_as_sandboxed_svg(registry: Registry) -> None:
    evaluations = registry.client.models.evaluations("clf@1")
    plot = httpx.get(
        f"{registry.url}/evaluations/{evaluations[0].evaluation_id}/plots/confusion_matrix.svg"
    )
    assert plot.status_code == 200 and plot.headers["content-type"].startswith("image/svg+xml")
    assert "sandbox" in plot.headers["content-security-policy"]
    missing = httpx.get(f"{registry.url}/evaluations/{evaluations[0].evaluation_id}/plots/nope.svg")
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "path", ["/models/ghost", "/models/clf/versions/9", "/models/clf/versions/staging"]
)
def test_unknown_models_get_a_404_page(ui: BrowserPage, registry: Registry, path: str) -> None:
    ui.allow_console("404")
    response = ui.page.goto(registry.url + path)
    assert response is not None and response.status == 404
    assert "opsloop" in ui.page.title()


def test_global_search_finds_models(ui: BrowserPage, registry: Registry) -> None:
    _open(ui, registry.url + "/search?q=cl")
    ui.page.click("a[href='/models/clf']")
    ui.page.wait_for_url("**/models/clf")
