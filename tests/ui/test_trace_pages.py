"""The tracing pages in a real browser: the filtered list, and a trace's waterfall with its
spans' input, output, errors, prompt link and scores."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from opsloop import Client
from tests.conftest import LiveServer
from tests.ui.conftest import BrowserPage

XSS = "<script>window.__xss = 1</script>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    folder = tmp_path_factory.mktemp("traces-ui")
    with LiveServer(f"sqlite:///{folder / 'ui.db'}", str(folder / "blobs")) as live:
        client = Client(server_url=live.url)
        client.prompts.create("answer", text="Answer: {{ q }}", labels=["production"])
        tracer = client.traces.tracer
        with tracer.span("support chat", kind="chain", user_id="u-7", tags=["beta"]) as root:
            with tracer.span("retrieve", kind="retriever", input=XSS) as s:
                s.update(output=["doc"])
            with tracer.span("generate", kind="llm", model="gpt-4o-mini") as s:
                client.prompts.get("answer").compile(q="hi")
                s.update(usage={"input_tokens": 50, "output_tokens": 10}, output="Hello!")
            try:
                with tracer.span("lookup", kind="tool"):
                    raise RuntimeError("upstream 500")
            except RuntimeError:
                pass
        with tracer.span("other", kind="chain", user_id="u-8"):
            pass
        client.traces.score(root.trace_id, "helpfulness", 0.75, comment="ok")
        yield live.url, root.trace_id
        client.close()


def _open(ui: BrowserPage, url: str) -> Any:
    response = ui.page.goto(url)
    assert response is not None and response.ok, url
    return response


def test_trace_list_filters_and_waterfall(ui: BrowserPage, server: tuple[str, str]) -> None:
    url, trace_id = server
    _open(ui, url + "/traces")
    table = ui.page.locator("#traces-table")
    assert table.locator("tbody tr").count() == 2
    ui.page.fill("input[name=user_id]", "u-7")
    ui.page.click("#trace-filters button[type=submit]")
    ui.page.wait_for_url("**/traces?*user_id=u-7*")
    assert table.locator("tbody tr").count() == 1
    row = table.locator("tbody tr").first.inner_text()
    assert "support chat" in row and "helpfulness=0.75" in row and "1 error(s)" in row
    ui.page.click("#traces-table a")
    ui.page.wait_for_url(f"**/traces/{trace_id}")
    spans = ui.page.locator("#spans-table tbody tr")
    assert spans.count() == 4
    assert spans.locator("svg rect.bar").count() == 4
    assert "span-error" in (spans.nth(3).get_attribute("class") or "")
    assert "gpt-4o-mini" in spans.nth(2).inner_text()
    assert "helpfulness" in ui.page.locator("#scores-table").inner_text()
    retrieve = ui.page.locator(".span-detail").nth(1)
    assert XSS in retrieve.locator("pre.io").first.inner_text()
    assert ui.page.evaluate("window.__xss") is None
    generate = ui.page.locator(".span-detail").nth(2)
    assert generate.locator("a[href='/prompts/answer#v1']").count() == 1
    assert "RuntimeError: upstream 500" in ui.page.locator(".span-detail").nth(3).inner_text()


def test_bad_score_filter_shows_the_error_and_all_traces(
    ui: BrowserPage, server: tuple[str, str]
) -> None:
    url, _ = server
    _open(ui, url + "/traces?score=oops")
    assert "NAME OP VALUE" in ui.page.locator(".filter-error").inner_text()
    assert ui.page.locator("#traces-table tbody tr").count() == 2


def test_unknown_trace_is_a_404_page(ui: BrowserPage, server: tuple[str, str]) -> None:
    url, _ = server
    ui.allow_console("404")
    response = ui.page.goto(url + "/traces/" + "a" * 32)
    assert response is not None and response.status == 404
