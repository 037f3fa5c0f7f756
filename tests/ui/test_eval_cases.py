"""An eval run's page in a real browser: every case with its inputs, expected value, output and
each check (with the failing one's reason), escaped, and long values collapsed until expanded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from opsloop import Client
from tests.conftest import LiveServer
from tests.ui.conftest import BrowserPage

HOSTILE = "<b>bold</b> & <img src=x id=injected>"
LONG_CONTEXT = "The refund policy. " + "Clause after clause of small print. " * 30 + "THE END"


def answer(prompt: str, variables: dict[str, Any]) -> str:
    """The "model" the suite calls: echoes short prompts, rambles on long ones."""
    if "context" in variables:
        return "We cannot help with that. " * 12 + "Goodbye."
    return f"You asked: {variables['question']}"


@pytest.fixture(scope="module")
def run_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("eval-cases-ui")
    with LiveServer(f"sqlite:///{folder / 'ui.db'}", str(folder / "blobs")) as live:
        client = Client(server_url=live.url)
        run = client.evals.run(
            {
                "name": "case-details",
                "threshold": 0.5,
                "prompts": [{"id": "inline", "text": "{{ question }}"}],
                "providers": [{"id": "python:tests.ui.test_eval_cases:answer"}],
                "defaults": {"assert": [{"type": "latency", "threshold": 60000}]},
                "tests": [
                    {
                        "description": "echo",
                        "vars": {"question": HOSTILE, "expected": f"You asked: {HOSTILE}"},
                        "assert": [{"type": "equals", "value": "{{ expected }}"}],
                    },
                    {
                        "description": "refund",
                        "vars": {"question": "Can I get a refund?", "context": LONG_CONTEXT},
                        "assert": [
                            {"type": "icontains", "value": "refund"},
                            {"type": "regex", "value": "Good(bye)?"},
                        ],
                    },
                ],
            }
        )
        assert run.passed_count == 1
        yield f"{live.url}/evals/{run.run_id}"
        client.close()


def test_each_case_shows_inputs_expected_output_and_checks(ui: BrowserPage, run_url: str) -> None:
    response = ui.page.goto(run_url)
    assert response is not None and response.ok
    rows = ui.page.locator("#eval-results tbody tr")
    assert rows.count() == 2

    echo = ui.page.locator('#eval-results tr[data-case="1"]')
    assert echo.locator("td.case").inner_text() == "echo"
    assert HOSTILE in echo.locator("td.inputs").inner_text()  # shown as text, not markup
    assert f"You asked: {HOSTILE}" in echo.locator("td.expected").inner_text()
    assert f"You asked: {HOSTILE}" in echo.locator("td.output").inner_text()
    assert ui.page.locator("#eval-results b, #eval-results img, #injected").count() == 0
    checks = echo.locator("li.check")
    assert checks.evaluate_all("els => els.map(e => e.dataset.type)") == ["latency", "equals"]
    assert "≤ 60000 ms" in checks.first.inner_text()
    assert echo.locator("li.check.failed").count() == 0
    assert echo.locator("a.trace-link[href^='/traces/']").count() == 1

    refund = ui.page.locator('#eval-results tr[data-case="2"]')
    assert "fail" in refund.locator("td").last.inner_text()
    failing = refund.locator("li.check.failed")
    assert failing.count() == 1
    assert failing.get_attribute("data-type") == "icontains"
    assert "does not contain 'refund'" in failing.locator(".reason").inner_text()
    assert "regex" in refund.locator("li.check.passed").last.inner_text()
    expected = refund.locator("td.expected").inner_text()
    assert "icontains" in expected and "refund" in expected and "Good(bye)?" in expected
    assert "Can I get a refund?" in refund.locator("td.inputs").inner_text()


def test_long_values_are_collapsed_until_expanded(ui: BrowserPage, run_url: str) -> None:
    ui.page.goto(run_url)
    refund = ui.page.locator('#eval-results tr[data-case="2"]')
    context = refund.locator("td.inputs details.long-value")
    assert context.count() == 1  # the short question is not collapsed
    full = context.locator(".value.full")
    assert not full.is_visible()
    assert "THE END" not in refund.locator("td.inputs").inner_text()
    assert f"show all ({len(LONG_CONTEXT)} characters)" in context.locator("summary").inner_text()
    context.locator("summary").click()
    assert full.is_visible() and full.inner_text() == LONG_CONTEXT
    assert "show less" in context.locator("summary").inner_text()

    output = refund.locator("td.output details.long-value")
    assert output.count() == 1 and not output.locator(".value.full").is_visible()
    output.locator("summary").click()
    assert output.locator(".value.full").inner_text().endswith("Goodbye.")
