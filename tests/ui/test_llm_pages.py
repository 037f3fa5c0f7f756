"""Feedback and eval pages in a real browser: reviewing a queue with the form, and an eval
run's cases with failures explained and linked to their traces."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from opsloop import Client
from tests.conftest import LiveServer
from tests.ui.conftest import BrowserPage


def shout(prompt: str, variables: dict[str, Any]) -> str:
    """The "model" the eval suite below calls: a python: provider."""
    return prompt.upper()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("llm-ui")
    with LiveServer(f"sqlite:///{folder / 'ui.db'}", str(folder / "blobs")) as live:
        client = Client(server_url=live.url)
        tracer = client.traces.tracer
        for question in ("How do I reset my password?", "<b>Where</b> is my order?"):
            with tracer.span("support", kind="chain", input=question, tags=["support"]) as s:
                s.update(output=f"Answer to {question}")
        client.traces.flush()
        client.feedback.create_queue(
            "support",
            scores=[
                {"name": "helpfulness", "min": 1, "max": 5},
                {"name": "tone", "data_type": "categorical", "categories": ["friendly", "rude"]},
            ],
        )
        client.feedback.add("support", filter={"tags": ["support"]})
        client.prompts.create("echo", text="say {{ word }}")
        client.evals.run(
            {
                "name": "shouting",
                "threshold": 0.5,
                "prompts": ["echo@1"],
                "providers": [{"id": "python:tests.ui.test_llm_pages:shout"}],
                "tests": [
                    {"vars": {"word": "hi"}, "assert": [{"type": "equals", "value": "SAY HI"}]},
                    {"vars": {"word": "yo"}, "assert": [{"type": "contains", "value": "hey"}]},
                ],
            }
        )
        yield live.url
        client.close()


def _open(ui: BrowserPage, url: str) -> Any:
    response = ui.page.goto(url)
    assert response is not None and response.ok, url
    return response


def test_review_a_queue_in_the_browser(ui: BrowserPage, server: str) -> None:
    _open(ui, server + "/feedback")
    assert "support" in ui.page.locator("#queues").inner_text()
    ui.page.click("#queues a[href='/feedback/support']")
    ui.page.wait_for_url("**/feedback/support")
    first = ui.page.locator("#review-item h2").inner_text()
    shown = [ui.page.locator("#review-item").inner_text()]
    ui.page.fill("#score-helpfulness", "7")  # out of range: the browser's own check stops it
    ui.page.select_option("#score-tone", "friendly")
    ui.page.click("button[value=submit]")
    assert ui.page.locator("#review-item h2").inner_text() == first
    ui.page.fill("#score-helpfulness", "4")
    ui.page.click("button[value=submit]")
    ui.page.wait_for_load_state()
    assert ui.page.locator("#review-item h2").inner_text() != first
    shown.append(ui.page.locator("#review-item").inner_text())
    assert any("<b>Where</b> is my order?" in text for text in shown)  # text, not markup
    ui.page.click("button[value=skip]")
    ui.page.wait_for_selector("#queue-done")
    _open(ui, server + "/feedback")
    row = ui.page.locator("#queues tbody tr").first.inner_text()
    assert "\t0\t1\t1" in row.replace(" ", "\t") or "0 1 1" in " ".join(row.split())


def test_eval_run_pages(ui: BrowserPage, server: str) -> None:
    _open(ui, server + "/evals")
    runs = ui.page.locator("#eval-runs tbody tr")
    assert runs.count() == 1 and "1/2" in runs.first.inner_text()
    runs.first.locator("a[href^='/evals/']").first.click()
    ui.page.wait_for_url("**/evals/*")
    cases = ui.page.locator("#eval-results tbody tr")
    assert cases.count() == 2
    failing = cases.nth(1).inner_text()
    assert "fail" in failing and "does not contain 'hey'" in failing
    assert "echo@1" in ui.page.locator("#by-prompt").inner_text()
    cases.nth(0).locator("a[href^='/traces/']").click()
    ui.page.wait_for_url("**/traces/*")
    assert "SAY HI" in ui.page.locator(".span-detail").first.inner_text()
