"""Editing a prompt and comparing two versions side by side, in a real browser, on a server in
``users`` mode: an editor saves a new version from the prompt's page (the form posts with the
session's CSRF token), compares two versions, and gets the form back with the reason when the
template is invalid or nothing changed; a viewer sees no edit control, and the server refuses
their post (403). Without gateway routes the playground says how to configure them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsloop import Client
from tests.conftest import LiveServer
from tests.governance.conftest import bootstrap
from tests.ui.conftest import BrowserPage


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    folder: Path = tmp_path_factory.mktemp("prompt-edit-ui")
    url, blobs = f"sqlite:///{folder / 'ui.db'}", str(folder / "blobs")
    keys = bootstrap(url, blobs)
    with Client(database_url=url, blob_url=blobs) as local:
        local.prompts.create("answer", text="Answer: {{ question }}", config={"model": "m"})
        local.prompts.create(
            "answer", text="Answer briefly.\nQuestion: {{ question }}", config={"model": "m"},
            message="shorter", labels=["staging"],
        )  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPSLOOP_AUTH", "users")
        patch.delenv("OPSLOOP_GATEWAY_CONFIG", raising=False)
        with LiveServer(url, blobs) as live:
            yield live, keys


def _sign_in(ui: BrowserPage, live: LiveServer, key: str, page: str) -> None:
    ui.page.goto(f"{live.url}{page}")
    assert "/login" in ui.page.url
    ui.page.fill('input[name="token"]', key)
    ui.page.click('form[action="/login"] button[type="submit"]')
    ui.page.wait_for_url(f"{live.url}{page}")


def _versions(live: LiveServer) -> list[Any]:
    settings = live.app.state.opsloop.settings
    with Client(database_url=settings.database_url, blob_url=settings.blob_url) as local:
        return local.prompts.versions("answer")


def test_an_editor_saves_a_version_and_compares_two(
    ui: BrowserPage, server: tuple[LiveServer, dict[str, str]]
) -> None:
    live, keys = server
    page = ui.page
    _sign_in(ui, live, keys["eddie"], "/prompts/answer")
    page.click("#edit-latest")
    page.wait_for_url("**/prompts/answer/edit")
    assert page.input_value("textarea[name=text]") == "Answer briefly.\nQuestion: {{ question }}"
    page.fill("textarea[name=text]", "Answer briefly in {{ language }}.\nQuestion: {{ question }}")
    page.fill("textarea[name=config]", '{"model": "m", "temperature": 0.3}')
    page.fill("input[name=message]", "answer in the asker's language")
    page.click("#save-version")
    page.wait_for_url("**/prompts/answer#v3")
    newest = page.locator("#v3")
    assert "answer in the asker's language" in newest.locator(".commit-message").inner_text()
    assert "language, question" in newest.inner_text()
    saved = _versions(live)[0]
    assert (saved.version, saved.created_by, saved.config) == (
        3,
        "eddie",
        {"model": "m", "temperature": 0.3},
    )
    assert saved.text == "Answer briefly in {{ language }}.\nQuestion: {{ question }}"  # no CRLF

    page.select_option("#compare-form select[name=old]", "1")
    page.select_option("#compare-form select[name=new]", "3")
    page.click("#compare-form button[type=submit]")
    page.wait_for_url("**/prompts/answer/diff?old=1&new=3")
    rows = page.locator("table.side-by-side tr")
    changed = page.locator("table.side-by-side tr.changed")
    assert changed.count() == 1 and rows.count() == 2
    assert changed.locator("td.old").inner_text() == "Answer: {{ question }}"
    assert changed.locator("td.new").inner_text() == "Answer briefly in {{ language }}."
    assert (
        page.locator("table.side-by-side tr.added td.new").inner_text()
        == "Question: {{ question }}"
    )
    assert "temperature" in page.locator("#config-changes").inner_text()
    assert page.inner_text("#variables-added") == "language"
    colour = changed.locator("td.new").evaluate("td => getComputedStyle(td).backgroundColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent")  # the changed line is highlighted


def test_the_form_comes_back_with_the_reason(
    ui: BrowserPage, server: tuple[LiveServer, dict[str, str]]
) -> None:
    live, keys = server
    page = ui.page
    ui.allow_console("status of 40[09]")
    _sign_in(ui, live, keys["eddie"], "/prompts/answer/edit?version=1")
    before = len(_versions(live))
    page.fill("textarea[name=text]", "Answer: {{ question")
    page.fill("input[name=message]", "broken")
    with page.expect_navigation() as sent:
        page.click("#save-version")
    assert sent.value.status == 400
    error = page.inner_text("#edit-error")
    assert "template syntax error" in error and "\n" not in error.strip()
    assert page.input_value("textarea[name=text]") == "Answer: {{ question"  # nothing lost

    page.goto(f"{live.url}/prompts/answer/edit")
    page.fill("input[name=message]", "the same again")
    with page.expect_navigation() as sent:
        page.click("#save-version")
    assert sent.value.status == 409 and "nothing changed" in page.inner_text("#edit-error")
    assert len(_versions(live)) == before


def test_a_viewer_gets_no_edit_and_a_403(
    ui: BrowserPage, server: tuple[LiveServer, dict[str, str]]
) -> None:
    live, keys = server
    page = ui.page
    ui.allow_console("status of 403")
    _sign_in(ui, live, keys["vic"], "/prompts/answer")
    assert page.locator("#v1").count() == 1
    assert page.locator("#edit-latest, .edit-version").count() == 0
    assert page.locator("#compare-form").count() == 1  # reading is a viewer's
    before = len(_versions(live))
    status = page.evaluate(
        """async () => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const body = new URLSearchParams({kind: "text", text: "{{ x }}", config: "{}",
                                              message: "sneaky", csrf_token: csrf});
            const response = await fetch("/prompts/answer/versions", {method: "POST", body});
            return [response.status, await response.text()];
        }"""
    )
    assert status[0] == 403 and "editor" in status[1]
    assert len(_versions(live)) == before
    assert page.goto(f"{live.url}/prompts/answer/edit").status == 403  # type: ignore[union-attr]
    page.goto(f"{live.url}/prompts/answer/playground")
    assert page.locator("#save").count() == 0 and page.locator("#save-hidden").is_visible()


def test_the_playground_says_how_to_add_routes(
    ui: BrowserPage, server: tuple[LiveServer, dict[str, str]]
) -> None:
    live, keys = server
    _sign_in(ui, live, keys["eddie"], "/prompts/answer/playground")
    status = ui.page.locator("#gateway-status")
    status.filter(has_text="--gateway-config").wait_for()
    assert "no routes" in status.inner_text() and ui.page.locator("#send").is_disabled()
