"""The LLM usage dashboard and the sessions pages in a real browser (Debian's chromium)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from opsloop import Client
from opsloop.llm.tracing.records import SpanRecord
from opsloop.llm.tracing.stats import ROUTE_ATTRIBUTE
from tests.conftest import LiveServer
from tests.ui.conftest import BrowserPage

XSS = "<script>window.__xss = 1</script>"
MINUTE = 60 * 10**9


def _call(n: int, start_ns: int, model: str, session: str, text: str, **more: Any) -> SpanRecord:
    return SpanRecord(
        trace_id=f"{n:032x}", span_id=f"{n:016x}", name="chat", kind="llm", start_ns=start_ns,
        end_ns=start_ns + (n + 1) * 10**7, model=model, input_tokens=100, output_tokens=10,
        cost=0.002, user_id="u-7", session_id=session, input=text, output=f"answer {n}",
        status="ok", **more,
    )  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("usage-ui")
    with LiveServer(f"sqlite:///{folder / 'ui.db'}", str(folder / "blobs")) as live:
        client = Client(server_url=live.url)
        now = time.time_ns()
        records = [
            _call(n, now - (30 - n) * MINUTE, "gpt-4o-mini" if n % 3 else "llama", "conv/1",
                  XSS if n == 2 else f"question {n}",
                  attributes={ROUTE_ATTRIBUTE: "support"} if n % 2 else {})
            for n in range(1, 10)
        ]  # fmt: skip
        for record in records:
            client.traces.tracer.exporter.add(record)
        client.traces.flush()
        yield live.url
        client.close()


def _open(ui: BrowserPage, url: str) -> Any:
    response = ui.page.goto(url)
    assert response is not None and response.ok, url
    return response


def test_dashboard_charts_usage_by_model_and_by_route(ui: BrowserPage, server: str) -> None:
    _open(ui, server + "/traces")
    ui.page.click("#trace-views a[href='/traces/dashboard']")
    ui.page.wait_for_selector("#usage-charts[data-charts-ready=true]")
    rows = ui.page.locator("#usage-table tbody tr")
    assert rows.count() == 2
    assert "gpt-4o-mini" in rows.first.inner_text() and "6" in rows.first.inner_text()
    figures = ui.page.locator("#usage-charts figure.chart")
    assert figures.count() == 6
    for i in range(6):  # one line per model, each with its points
        assert figures.nth(i).locator("path.series").count() == 2
    assert "Calls" in ui.page.locator("#usage-total").inner_text()

    ui.page.select_option("#usage-form select[name=by]", "route")
    ui.page.select_option("#usage-form select[name=range]", "1h")
    ui.page.click("#usage-form button[type=submit]")
    ui.page.wait_for_url("**/traces/dashboard?by=route&range=1h")
    ui.page.wait_for_selector("#usage-charts[data-charts-ready=true]")
    table = ui.page.locator("#usage-table").inner_text()
    assert "support" in table and "(none)" in table


def test_a_bad_group_by_is_a_400_page(ui: BrowserPage, server: str) -> None:
    ui.allow_console("400")
    response = ui.page.goto(server + "/traces/dashboard?by=weather")
    assert response is not None and response.status == 400
    assert "group by one of model, route, key, user" in ui.page.content()


def test_sessions_list_and_a_conversation_in_order(ui: BrowserPage, server: str) -> None:
    _open(ui, server + "/traces/sessions")
    rows = ui.page.locator("#sessions-table tbody tr")
    assert rows.count() == 1 and "u-7" in rows.first.inner_text()
    ui.page.click("#sessions-table a")
    ui.page.wait_for_url("**/traces/sessions/conv/1")
    turns = ui.page.locator("#session-turns li.turn")
    assert turns.count() == 9
    assert "question 1" in turns.first.inner_text() and "answer 9" in turns.last.inner_text()
    assert XSS in turns.nth(1).locator(".turn-in pre").inner_text()
    assert ui.page.evaluate("window.__xss") is None
    turns.first.locator(".turn-head a").click()
    ui.page.wait_for_url(f"**/traces/{1:032x}")
    ui.page.click("#trace-facts a[href^='/traces/sessions/']")
    ui.page.wait_for_url("**/traces/sessions/conv/1")
