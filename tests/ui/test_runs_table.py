"""The runs table as MLflow users expect it: nested runs under their parent, a column picker
remembered per experiment, a sticky name column, full dates on hover; run counts by status."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from opsloop import Client
from tests.conftest import LiveServer
from tests.ui.conftest import BrowserPage


@dataclass
class Sweep:
    url: str
    experiment_id: str
    other_experiment_id: str
    parent_id: str
    child_ids: list[str]
    grandchild_id: str


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    """A sweep (parent, 3 trials, one trial with a nested retry), a failed run, and many
    metric columns, so the table scrolls sideways."""
    folder = tmp_path_factory.mktemp("runs-table")
    with LiveServer(f"sqlite:///{folder / 'r.db'}", str(folder / "blobs")) as server:
        client = Client(server_url=server.url)
        exp = client.set_experiment("sweeps").experiment_id
        parent = client.create_run(exp, run_name="sweep", capture_env=False).info.run_id
        children = []
        for i in range(3):
            run_id = client.create_run(
                exp,
                run_name=f"trial-{i}",
                parent_run_id=parent,
                tags={"team": "vision"},
                capture_env=False,
            ).info.run_id
            client.log_params(run_id, {"lr": 10.0**-i})
            client.log_metrics(run_id, {f"m{k:02d}": k + i for k in range(25)})
            client.end_run(run_id)
            children.append(run_id)
        retry = client.create_run(
            exp, run_name="trial-1-retry", parent_run_id=children[1], capture_env=False
        ).info.run_id
        client.end_run(retry)
        client.end_run(parent)
        failed = client.create_run(exp, run_name="broken", capture_env=False).info.run_id
        client.end_run(failed, status="FAILED")
        other = client.set_experiment("other").experiment_id
        other_run = client.create_run(other, run_name="solo", capture_env=False).info.run_id
        client.log_params(other_run, {"lr": 0.5})
        client.end_run(other_run)
        yield Sweep(server.url, exp, other, parent, children, retry)
        client.close()


def _visible_names(ui: BrowserPage) -> list[str]:
    return [
        name.strip()
        for name in ui.page.locator("#runs-table tbody tr:visible .run-link").all_inner_texts()
    ]


def test_nested_runs_sit_under_their_parent_and_fold(ui: BrowserPage, sweep: Sweep) -> None:
    ui.page.goto(f"{sweep.url}/experiments/{sweep.experiment_id}?order=attributes.run_name%20ASC")
    assert _visible_names(ui) == [
        "broken",
        "sweep",
        "trial-0",
        "trial-1",
        "trial-1-retry",
        "trial-2",
    ]
    assert "1\u20132 of 2 runs (and 4 nested)" in ui.page.inner_text("#run-count")
    parent = ui.page.locator(f'tr[data-run-id="{sweep.parent_id}"]')
    assert parent.locator(".nest-count").inner_text() == "3"
    retry = ui.page.locator(f'tr[data-run-id="{sweep.grandchild_id}"] td.name')
    assert "depth-2" in (retry.get_attribute("class") or "")

    parent.locator(".nest-toggle").click()
    assert _visible_names(ui) == ["broken", "sweep"]
    assert parent.locator(".nest-toggle").get_attribute("aria-expanded") == "false"
    ui.page.reload()  # folding is remembered
    assert _visible_names(ui) == ["broken", "sweep"]
    ui.page.locator(f'tr[data-run-id="{sweep.parent_id}"] .nest-toggle').click()
    ui.page.locator(f'tr[data-run-id="{sweep.child_ids[1]}"] .nest-toggle').click()
    assert "trial-1-retry" not in _visible_names(ui)
    assert "trial-2" in _visible_names(ui)
    ui.page.click("#collapse-all")
    assert _visible_names(ui) == ["broken", "sweep"]
    ui.page.click("#collapse-all")
    assert len(_visible_names(ui)) == 6

    # A flat list, and a filter, show matching runs each on its own row.
    ui.page.click("#flat-toggle")
    ui.page.wait_for_url("**flat=1**")
    assert "of 6 runs" in ui.page.inner_text("#run-count")
    assert ui.page.locator("#runs-table tbody .nest-toggle").count() == 0
    ui.page.fill("#filter", "params.lr IN ('0.1', '0.01')")
    ui.page.press("#filter", "Enter")
    ui.page.wait_for_url("**filter=**")
    assert sorted(_visible_names(ui)) == ["trial-1", "trial-2"]


def test_column_picker_is_remembered_per_experiment(ui: BrowserPage, sweep: Sweep) -> None:
    ui.page.goto(f"{sweep.url}/experiments/{sweep.experiment_id}")
    header = ui.page.locator('#runs-table th[data-col="params.lr"]')
    tag_header = ui.page.locator('#runs-table th[data-col="tags.team"]')
    assert header.is_visible() and tag_header.is_hidden()  # tags start hidden
    ui.page.click("#column-picker summary")
    groups = ui.page.locator("#column-picker legend").all_inner_texts()
    assert [g.split()[0] for g in groups] == ["Params", "Metrics", "Tags"]
    ui.page.uncheck('#column-picker input[value="params.lr"]')
    ui.page.check('#column-picker input[value="tags.team"]')
    ui.page.click('#column-picker button[data-none="metrics"]')
    assert header.is_hidden() and tag_header.is_visible()
    assert ui.page.locator("#runs-table th[data-col^='metrics.']:visible").count() == 0
    child = ui.page.locator(f'tr[data-run-id="{sweep.child_ids[0]}"]')
    assert "vision" in child.inner_text()
    _assert_columns_line_up(ui)

    ui.page.reload()
    assert header.is_hidden() and tag_header.is_visible()
    assert ui.page.locator("#runs-table th[data-col^='metrics.']:visible").count() == 0
    # Another experiment keeps its own columns.
    ui.page.goto(f"{sweep.url}/experiments/{sweep.other_experiment_id}")
    assert ui.page.locator('#runs-table th[data-col="params.lr"]').is_visible()
    ui.page.goto(f"{sweep.url}/experiments/{sweep.experiment_id}")
    ui.page.click("#column-picker summary")
    ui.page.click('#column-picker button[data-all="metrics"]')
    assert ui.page.locator("#runs-table th[data-col^='metrics.']:visible").count() == 25
    _assert_columns_line_up(ui)


def _assert_columns_line_up(ui: BrowserPage) -> None:
    """Every visible body cell sits under the header cell of its column."""
    lefts = ui.page.evaluate(
        """() => {
          const table = document.getElementById('runs-table');
          const visible = (cells) => [...cells].filter((c) => c.offsetParent !== null)
            .map((c) => Math.round(c.getBoundingClientRect().left));
          return [visible(table.tHead.rows[0].cells), visible(table.tBodies[0].rows[0].cells)];
        }"""
    )
    assert lefts[0] == lefts[1]


def test_name_column_stays_put_and_dates_show_in_full_on_hover(
    ui: BrowserPage, sweep: Sweep
) -> None:
    ui.page.goto(f"{sweep.url}/experiments/{sweep.experiment_id}")
    name = ui.page.locator(f'tr[data-run-id="{sweep.child_ids[0]}"] td.name')
    before = name.bounding_box()
    ui.page.locator(".table-wrap").evaluate("wrap => { wrap.scrollLeft = 1500; }")
    after = name.bounding_box()
    assert before is not None and after is not None
    assert abs(before["x"] - after["x"]) < 1  # the metrics scrolled, the name did not
    started = ui.page.locator(f'tr[data-run-id="{sweep.child_ids[0]}"] [data-field="started"]')
    assert started.inner_text() == "just now"
    title = started.get_attribute("title") or ""
    assert title.endswith(" UTC") and len(title.split()[1]) == 10  # weekday, date, time.ms UTC


def test_experiments_list_counts_runs_by_status(ui: BrowserPage, sweep: Sweep) -> None:
    ui.page.goto(f"{sweep.url}/experiments")
    row = ui.page.locator("#experiments-table tr", has_text="sweeps")
    assert row.locator("td.num").inner_text() == "6"
    counts = row.locator(".status-counts .badge").all_inner_texts()
    assert counts == ["failed 1", "finished 5"]


def test_filter_sort_and_pages_swap_the_table_in_place_and_back_returns(
    ui: BrowserPage, sweep: Sweep
) -> None:
    ui.page.goto(f"{sweep.url}/experiments/{sweep.experiment_id}")
    ui.page.evaluate("window.__same_page = 1")
    ui.page.fill("#filter", "attributes.run_name LIKE 'trial-%'")
    ui.page.press("#filter", "Enter")
    ui.page.wait_for_url("**filter=**")
    assert sorted(_visible_names(ui)) == ["trial-0", "trial-1", "trial-1-retry", "trial-2"]
    ui.page.locator("#runs-table thead a", has_text="Run").click()
    ui.page.wait_for_url("**order=**")
    assert _visible_names(ui) == ["trial-2", "trial-1-retry", "trial-1", "trial-0"]
    assert ui.page.evaluate("window.__same_page") == 1  # no page load
    ui.page.click("#column-picker summary")
    ui.page.uncheck('#column-picker input[value="params.lr"]')  # the swapped table still listens
    assert ui.page.locator('#runs-table th[data-col="params.lr"]').is_hidden()
    ui.page.check('#column-picker input[value="params.lr"]')

    rows = ui.page.locator("#runs-table tbody tr")
    ui.page.go_back()
    expect(ui.page).not_to_have_url(re.compile("order="))
    assert "filter=" in ui.page.url
    expect(rows).to_have_count(4)
    ui.page.go_back()
    expect(rows).to_have_count(6)
    assert ui.page.input_value("#filter") == ""
