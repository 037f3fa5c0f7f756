"""The links the mlflow client prints ("View run at http://SERVER/#/experiments/E/runs/R") are
its own UI's routes, in a fragment the server never sees: the root page keeps the fragment
through its redirect and the shell's script opens opsloop's page for the same run, experiment
or model version, in the workspace a ``/w/NAME/`` tracking URI names."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import expect

from opsloop import Client
from opsloop.config import load_settings
from tests.conftest import LiveServer
from tests.registry.conftest import COLUMNS
from tests.registry.conftest import train
from tests.ui.conftest import BrowserPage


@dataclass
class Logged:
    url: str
    experiment_id: str
    run_id: str
    team_run_id: str


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    from sklearn.datasets import load_breast_cancer

    folder: Path = tmp_path_factory.mktemp("mlflow-links")
    frame = load_breast_cancer(as_frame=True).frame[[*COLUMNS, "target"]]
    with LiveServer(f"sqlite:///{folder / 'ui.db'}", str(folder / "blobs")) as server:
        client = Client(server_url=server.url)
        experiment_id = client.set_experiment("from mlflow").experiment_id
        run_id = client.create_run(experiment_id, run_name="linked-run", capture_env=False)
        client.end_run(run_id.info.run_id)
        client.models.register("linked.model_1", train(frame, 1.0), run_id=run_id.info.run_id)
        client.governance.create_workspace("team-a")
        team = Client(settings=load_settings(server_url=server.url, workspace="team-a"))
        team_run = team.create_run(team.set_experiment("team work").experiment_id,
                                   run_name="team-run", capture_env=False)  # fmt: skip
        yield Logged(server.url, experiment_id, run_id.info.run_id, team_run.info.run_id)


def test_the_clients_links_open_opsloops_pages(ui: BrowserPage, logged: Logged) -> None:
    page, exp, run = ui.page, logged.experiment_id, logged.run_id
    for link, path, shown in [
        (f"/#/experiments/{exp}/runs/{run}", f"/runs/{run}", "linked-run"),
        (f"/#/experiments/{exp}/runs/{run}/artifacts/model", f"/runs/{run}", "linked-run"),
        (f"/#/experiments/{exp}", f"/experiments/{exp}", "linked-run"),
        ("/#/models/linked.model_1/versions/1", "/models/linked.model_1/versions/1",
         "linked.model_1@1"),
        ("/#/models/linked%2Emodel_1", "/models/linked.model_1", "linked.model_1"),
        ("/#/models", "/models", "linked.model_1"),
    ]:  # fmt: skip
        page.goto(logged.url + link)
        expect(page).to_have_url(logged.url + path)
        expect(page.locator("main")).to_contain_text(shown)


def test_a_workspace_uri_opens_the_run_in_its_workspace(ui: BrowserPage, logged: Logged) -> None:
    page = ui.page
    page.goto(f"{logged.url}/w/team-a/#/experiments/x/runs/{logged.team_run_id}")
    expect(page).to_have_url(f"{logged.url}/runs/{logged.team_run_id}")
    expect(page.locator("main")).to_contain_text("team-run")


def test_other_fragments_leave_the_page_alone(ui: BrowserPage, logged: Logged) -> None:
    page = ui.page
    for link in ["/#/no-such-page/1", "/#/experiments/%zz/runs/%zz", "/experiments#metrics"]:
        page.goto(logged.url + link)
        expect(page).to_have_url(logged.url + "/experiments" + link[link.index("#") :])
        expect(page.locator("main")).to_contain_text("from mlflow")
