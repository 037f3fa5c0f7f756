"""The prompt registry's pages in a real browser: prompts and a prompt's versions with diffs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from opsloop import Client
from tests.conftest import LiveServer
from tests.ui.conftest import BrowserPage

XSS = "<script>window.__xss = 1</script>{{ question }}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("prompts-ui")
    with LiveServer(f"sqlite:///{folder / 'ui.db'}", str(folder / "blobs")) as live:
        client = Client(server_url=live.url)
        client.prompts.create("answer", text="Answer: {{ question }}", labels=["production"])
        client.prompts.create("answer", text=XSS, config={"temperature": 0.2}, labels=["staging"])
        yield live.url
        client.close()


def _open(ui: BrowserPage, url: str) -> Any:
    response = ui.page.goto(url)
    assert response is not None and response.ok, url
    return response


def test_prompt_pages(ui: BrowserPage, server: str) -> None:
    _open(ui, server + "/prompts")
    assert "production → 1" in ui.page.locator("#prompts-table").inner_text()
    ui.page.click("#prompts-table a[href='/prompts/answer']")
    ui.page.wait_for_url("**/prompts/answer")
    assert ui.page.locator(".prompt-version").count() == 2
    newest = ui.page.locator("#v2")
    assert "staging" in newest.inner_text() and XSS in newest.locator("pre.template").inner_text()
    newest.locator("summary").click()
    assert "+<script>" in newest.locator("pre.diff").inner_text()
    assert ui.page.evaluate("window.__xss") is None


def test_unknown_prompt_is_a_404_page(ui: BrowserPage, server: str) -> None:
    ui.allow_console("404")
    response = ui.page.goto(server + "/prompts/ghost")
    assert response is not None and response.status == 404
