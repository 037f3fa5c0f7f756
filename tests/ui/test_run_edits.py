"""Editing from the page, on a server in ``users`` mode: an editor renames a run, writes its
description, sets and deletes tags, and describes a model version; every edit goes through the
REST API (so roles and the audit log apply), and a refused edit shows the server's message.
The run page links to the model versions registered from it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from opsloop import Client
from tests.conftest import LiveServer
from tests.governance.conftest import bootstrap
from tests.registry.conftest import COLUMNS
from tests.registry.conftest import train
from tests.ui.conftest import BrowserPage


@dataclass
class Served:
    live: LiveServer
    keys: dict[str, str]
    run_id: str
    mlflow_run_id: str

    def local(self) -> Client:
        settings = self.live.app.state.opsloop.settings
        return Client(database_url=settings.database_url, blob_url=settings.blob_url)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from sklearn.datasets import load_breast_cancer

    folder: Path = tmp_path_factory.mktemp("run-edits-ui")
    url, blobs = f"sqlite:///{folder / 'ui.db'}", str(folder / "blobs")
    keys = bootstrap(url, blobs)
    frame = load_breast_cancer(as_frame=True).frame[[*COLUMNS, "target"]]
    with Client(database_url=url, blob_url=blobs) as local:
        exp = local.set_experiment("edits").experiment_id
        run_id = local.create_run(exp, run_name="first-try", capture_env=False).info.run_id
        local.set_tag(run_id, "team", "vision")
        local.end_run(run_id)
        local.models.register("clf", train(frame, 1.0), run_id=run_id)
        logged = local.create_run(
            exp, run_name="from-mlflow", tags={"mlflow.note.content": "old words"}
        ).info.run_id
        local.end_run(logged)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPSLOOP_AUTH", "users")
        with LiveServer(url, blobs) as live:
            yield Served(live, keys, run_id, logged)


def _sign_in(ui: BrowserPage, served: Served, user: str, page: str) -> None:
    ui.page.goto(f"{served.live.url}{page}")
    ui.page.fill('input[name="token"]', served.keys[user])
    ui.page.click('form[action="/login"] button[type="submit"]')
    ui.page.wait_for_url(f"{served.live.url}{page}")


def test_an_editor_renames_describes_and_tags_a_run(ui: BrowserPage, served: Served) -> None:
    page = ui.page
    ui.allow_console("status of 400")
    _sign_in(ui, served, "eddie", f"/runs/{served.run_id}")

    page.click("#rename-run")
    page.fill("#edit-name input[name=run_name]", "x" * 300)
    page.click("#edit-name button[type=submit]")
    error = page.locator("#edit-name .edit-error")
    error.wait_for()
    assert "250" in error.inner_text() or "long" in error.inner_text()
    page.fill("#edit-name input[name=run_name]", "second-try")
    with page.expect_navigation():
        page.click("#edit-name button[type=submit]")
    assert page.inner_text("#run-name") == "second-try"

    page.click("#edit-description-button")
    page.fill("#edit-description textarea", "Trained on the March data.\nSee the card.")
    with page.expect_navigation():
        page.click("#edit-description button[type=submit]")
    assert page.inner_text("#run-description") == "Trained on the March data.\nSee the card."

    page.click("#set-tag-button")
    page.fill("#set-tag input[name=value]", "no key")
    page.click("#set-tag button[type=submit]")
    page.locator("#set-tag .edit-error").wait_for()
    assert page.locator("#set-tag .edit-error").inner_text()
    page.fill("#set-tag input[name=key]", "stage")
    page.fill("#set-tag input[name=value]", "candidate")
    with page.expect_navigation():
        page.click("#set-tag button[type=submit]")
    assert "candidate" in page.inner_text('#tags-table tr[data-tag="stage"]')
    with page.expect_navigation():
        page.click('#tags-table tr[data-tag="team"] button[type=submit]')
    assert page.locator('#tags-table tr[data-tag="team"]').count() == 0

    with served.local() as local:
        run = local.get_run(served.run_id)
    assert run.info.run_name == "second-try"
    assert run.info.notes == "Trained on the March data.\nSee the card."
    assert run.data.tags.get("stage") == "candidate" and "team" not in run.data.tags


def test_a_description_logged_through_mlflow_is_edited_where_mlflow_reads_it(
    ui: BrowserPage, served: Served
) -> None:
    _sign_in(ui, served, "eddie", f"/runs/{served.mlflow_run_id}")
    assert ui.page.inner_text("#run-description") == "old words"
    assert ui.page.locator('#tags-table tr[data-tag="mlflow.note.content"]').count() == 0
    ui.page.click("#edit-description-button")
    ui.page.fill("#edit-description textarea", "new words")
    with ui.page.expect_navigation():
        ui.page.click("#edit-description button[type=submit]")
    assert ui.page.inner_text("#run-description") == "new words"
    with served.local() as local:
        assert local.get_run(served.mlflow_run_id).data.tags["mlflow.note.content"] == "new words"


def test_the_run_links_to_its_model_version_whose_description_is_edited_in_place(
    ui: BrowserPage, served: Served
) -> None:
    _sign_in(ui, served, "eddie", f"/runs/{served.run_id}")
    ui.page.click("#model-versions a")
    ui.page.wait_for_url("**/models/clf/versions/1")
    ui.page.click("#edit-description-button")
    ui.page.fill("#edit-description textarea", "Logistic regression, C=1.")
    with ui.page.expect_navigation():
        ui.page.click("#edit-description button[type=submit]")
    assert "Logistic regression, C=1." in ui.page.inner_text("#version-description")


def test_a_viewer_gets_no_edit_controls_and_a_forged_edit_is_refused(
    ui: BrowserPage, served: Served
) -> None:
    ui.allow_console("status of 403")
    _sign_in(ui, served, "vic", f"/runs/{served.run_id}")
    before = ui.page.inner_text("#run-name")
    for control in ("#rename-run", "#edit-description-button", "#set-tag-button", "#edit-name"):
        assert ui.page.locator(control).count() == 0, control
    status = ui.page.evaluate(
        """async (runId) => {
            const token = document.querySelector('meta[name="csrf-token"]').content;
            const answer = await fetch(`/api/runs/${runId}`, {method: "PATCH",
                headers: {"Content-Type": "application/json", "X-CSRF-Token": token},
                body: JSON.stringify({run_name: "vandalised"})});
            return [answer.status, (await answer.json()).error.message];
        }""",
        served.run_id,
    )
    assert status[0] == 403 and "editor" in status[1]
    ui.page.reload()
    assert ui.page.inner_text("#run-name") == before
