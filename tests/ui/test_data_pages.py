"""Data versions' pages in a real browser: datasets, a dataset's versions, and a version with
its schema statistics, validation report, files and lineage."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from opsloop import Client
from tests.conftest import LiveServer
from tests.ui.conftest import BrowserPage

XSS = '<img src=x onerror="window.__xss = 1">'


@dataclass
class Data:
    url: str
    client: Client
    run_id: str


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Data]:
    """A server with a validated table (one failing check), a second version and a run."""
    import pandas as pd

    folder = tmp_path_factory.mktemp("data-ui")
    frame = pd.DataFrame({"age": [21, 35, -4, 50], "plan": ["free", "pro", XSS, "team"]})
    frame.to_csv(folder / "users.csv", index=False)
    expectations = {"columns": {"age": {"min": 0}, "plan": {"allowed": ["free", "pro", "team"]}}}
    with LiveServer(f"sqlite:///{folder / 'ui.db'}", str(folder / "blobs")) as server:
        client = Client(server_url=server.url)
        client.data.add(folder / "users.csv", "users", message=XSS, expectations=expectations)
        frame.assign(age=frame.age.abs()).to_csv(folder / "users.csv", index=False)
        client.data.add(folder / "users.csv", "users", message="fixed ages")
        client.data.set_alias("users@2", "prod")
        exp = client.set_experiment("data-ui").experiment_id
        run_id = client.create_run(exp, run_name="trainer", capture_env=False).info.run_id
        client.data.log_input(run_id, "users@prod")
        client.end_run(run_id)
        yield Data(server.url, client, run_id)
        client.close()


def _open(ui: BrowserPage, url: str) -> Any:
    response = ui.page.goto(url)
    assert response is not None and response.ok, url
    return response


def test_datasets_and_versions_tables(ui: BrowserPage, data: Data) -> None:
    _open(ui, data.url + "/datasets")
    row = ui.page.locator("#datasets-table tbody tr").first
    assert "users" in row.inner_text() and "prod → 2" in row.inner_text()
    ui.page.click("#datasets-table a[href='/datasets/users']")
    ui.page.wait_for_url("**/datasets/users")
    versions = ui.page.locator("#versions-table tbody tr")
    assert versions.count() == 2
    assert "failed" in versions.nth(1).inner_text() and "prod" in versions.nth(0).inner_text()


def test_version_page_shows_schema_validation_files_and_lineage(
    ui: BrowserPage, data: Data
) -> None:
    _open(ui, data.url + "/datasets/users/versions/1")
    assert ui.page.locator("#validation-status").inner_text() == "validation failed"
    schema = ui.page.locator("#schema-table tbody tr")
    assert schema.count() == 2 and "age" in schema.first.inner_text()
    report = ui.page.locator("#validation-table").inner_text()
    assert "FAIL" in report and "-4" in report
    assert ui.page.locator("#files-table tbody tr").count() == 1
    assert ui.page.evaluate("window.__xss") is None  # message and values were escaped
    _open(ui, data.url + "/datasets/users/versions/prod")
    ui.page.click(f"#lineage a[href='/runs/{data.run_id}']")
    ui.page.wait_for_url(f"**/runs/{data.run_id}")


def test_version_page_fills_statistics_and_keeps_the_layout_footer(
    ui: BrowserPage, data: Data
) -> None:
    """The page's own ``version`` must not shadow the layout's opsloop version, and the table
    reads the statistics under the keys ``describe_table`` stores (mean, null_pct, distinct)."""
    from opsloop.kernel import __version__

    _open(ui, data.url + "/datasets/users/versions/2")
    assert ui.page.locator("#opsloop-version").inner_text() == __version__
    footer = ui.page.locator("footer").inner_text()
    assert "version_id" not in footer and "users@2" not in footer
    headers = ui.page.locator("#schema-table thead th").all_inner_texts()
    cells = ui.page.locator("#schema-table tbody tr").first.locator("td").all_inner_texts()
    age = dict(zip(headers, cells, strict=True))
    assert age["Column"] == "age"
    assert age["min"] == "4" and age["max"] == "50"
    assert float(age["mean"]) == pytest.approx(27.5)
    assert float(age["nulls %"].rstrip("%")) == 0
    assert 3 <= int(age["distinct"]) <= 5  # approx_unique: an estimate


@pytest.mark.parametrize("path", ["/datasets/ghost", "/datasets/users/versions/9"])
def test_unknown_datasets_get_a_404_page(ui: BrowserPage, data: Data, path: str) -> None:
    ui.allow_console("404")
    response = ui.page.goto(data.url + path)
    assert response is not None and response.status == 404


def test_global_search_finds_datasets(ui: BrowserPage, data: Data) -> None:
    _open(ui, data.url + "/search?q=user")
    ui.page.click("a[href='/datasets/users']")
    ui.page.wait_for_url("**/datasets/users")
