"""One suite, four ways in: local and HTTP clients, on SQLite and on PostgreSQL.

Every behaviour, bad inputs included, must be identical whichever backend serves it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from opsloop import Client
from opsloop import Conflict
from opsloop import InvalidInput
from opsloop import NotFound
from opsloop import RunStatus


@pytest.fixture
def exp(client: Client) -> str:
    return client.create_experiment("exp", tags={"team": "ml"}).experiment_id


def test_experiment_lifecycle(client: Client) -> None:
    created = client.create_experiment("churn", description="d", tags={"k": "v"})
    assert client.get_experiment(created.experiment_id) == created
    assert client.get_experiment_by_name("churn").tags == {"k": "v"}
    assert client.set_experiment("churn").experiment_id == created.experiment_id
    with pytest.raises(Conflict, match="already exists"):
        client.create_experiment("churn")
    renamed = client.rename_experiment(created.experiment_id, "churn-v2")
    assert renamed.name == "churn-v2"
    client.delete_experiment(created.experiment_id)
    assert [e.name for e in client.list_experiments().items] == []
    assert [e.name for e in client.list_experiments(view="deleted").items] == ["churn-v2"]
    with pytest.raises(Conflict, match="deleted"):
        client.create_run(created.experiment_id)
    client.restore_experiment(created.experiment_id)
    assert [e.name for e in client.list_experiments().items] == ["churn-v2"]


def test_experiment_bad_input(client: Client) -> None:
    with pytest.raises(InvalidInput):
        client.create_experiment("")
    with pytest.raises(InvalidInput):
        client.create_experiment("x" * 251)
    with pytest.raises(NotFound):
        client.get_experiment("0" * 32)
    with pytest.raises(NotFound):
        client.get_experiment_by_name("nope")
    with pytest.raises(InvalidInput):
        client.list_experiments(view="weird")
    with pytest.raises(InvalidInput, match="page_token"):
        client.list_experiments(page_token="garbage!")


def test_experiment_paging(client: Client) -> None:
    for i in range(5):
        client.create_experiment(f"e{i}")
    page = client.list_experiments(max_results=2)
    names = [e.name for e in page.items]
    while page.next_page_token:
        page = client.list_experiments(max_results=2, page_token=page.next_page_token)
        names += [e.name for e in page.items]
    assert names == [f"e{i}" for i in range(5)]


def test_run_lifecycle_and_nesting(client: Client, exp: str) -> None:
    parent = client.create_run(exp, run_name="parent", tags={"a": 1}, capture_env=False)
    assert parent.info.status == RunStatus.RUNNING
    assert parent.data.tags == {"a": "1"}
    child = client.create_run(exp, parent_run_id=parent.info.run_id, capture_env=False)
    assert child.info.parent_run_id == parent.info.run_id
    assert child.info.run_name  # a readable generated name
    info = client.end_run(child.info.run_id)
    assert info.status == RunStatus.FINISHED and info.end_time is not None
    client.update_run(parent.info.run_id, notes="why this run exists", run_name="renamed")
    assert client.get_run(parent.info.run_id).info.notes == "why this run exists"
    client.delete_run(parent.info.run_id)
    found = client.search_runs("exp").items
    assert [r.info.run_id for r in found] == [child.info.run_id]
    client.restore_run(parent.info.run_id)
    assert len(client.search_runs("exp").items) == 2


def test_params_are_immutable(client: Client, exp: str) -> None:
    run_id = client.create_run(exp, capture_env=False).info.run_id
    client.log_params(run_id, {"lr": 0.01, "depth": 6})
    client.log_param(run_id, "lr", 0.01)  # same value again is fine
    with pytest.raises(Conflict) as caught:
        client.log_param(run_id, "lr", 0.02)
    assert caught.value.details == {"key": "lr", "old_value": "0.01", "new_value": "0.02"}
    with pytest.raises(Conflict):  # a batch with one conflicting param writes nothing
        client.log_params(run_id, {"new": 1, "depth": 7})
    assert client.get_run(run_id).data.params == {"lr": "0.01", "depth": "6"}


def test_metrics_history_and_latest(client: Client, exp: str) -> None:
    run_id = client.create_run(exp, capture_env=False).info.run_id
    for step in range(500):
        client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
    client.log_metrics(run_id, {"acc": 0.5, "val/acc": 0.4}, step=1)
    client.log_metric(run_id, "acc", 0.9, step=3)
    client.log_metric(run_id, "acc", 0.7, step=2)  # an older step does not become latest
    client.flush()
    history = client.get_metric_history(run_id, "loss")
    assert history.steps == list(range(500))
    assert history.values[-1] == pytest.approx(1 / 500)
    metrics = client.get_run(run_id).data.metrics
    assert metrics["acc"] == 0.9 and metrics["val/acc"] == 0.4
    with pytest.raises(NotFound):
        client.get_metric_history(run_id, "never-logged")


def test_metric_history_thinned_for_plotting_keeps_ends_and_extremes(
    client: Client, exp: str
) -> None:
    run_id = client.create_run(exp, capture_env=False).info.run_id
    values = [float((i * 37) % 101) for i in range(5000)]
    values[2500] = 1000.0  # a spike that thinning must not lose
    client.log_batch(run_id, metrics={"m": {"values": values, "steps": list(range(5000))}})
    thin = client.get_metric_history(run_id, "m", max_points=200)
    assert 100 <= len(thin.values) <= 200
    assert thin.steps[0] == 0 and thin.steps[-1] == 4999
    assert thin.steps == sorted(thin.steps)
    assert max(thin.values) == 1000.0 and min(thin.values) == 0.0
    assert len(client.get_metric_history(run_id, "m", max_points=10_000).values) == 5000
    with pytest.raises(InvalidInput, match="max_points"):
        client.get_metric_history(run_id, "m", max_points=1)


def test_log_batch_is_one_round_trip_and_idempotent(client: Client, exp: str) -> None:
    run_id = client.create_run(exp, capture_env=False).info.run_id
    points = [("m", float(i), i, 1000 + i) for i in range(1000)]
    assert client.log_batch(run_id, points, params={"p": "x"}, tags={"t": "y"}) == 1000
    client.log_batch(run_id, points)  # a retried batch adds nothing
    assert len(client.get_metric_history(run_id, "m").values) == 1000
    columns = {"c": {"values": [1.0, 2.0], "steps": [0, 1], "timestamps": [5, 6]}}
    client.log_batch(run_id, columns)
    assert client.get_metric_history(run_id, "c").values == [1.0, 2.0]
    with pytest.raises(InvalidInput, match="equal lengths"):
        client.log_batch(run_id, {"c": {"values": [1.0], "steps": [0, 1], "timestamps": [5]}})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "abc"])
def test_non_finite_metric_is_refused_at_the_call(client: Client, exp: str, value: object) -> None:
    run_id = client.create_run(exp, capture_env=False).info.run_id
    with pytest.raises(InvalidInput):
        client.log_metric(run_id, "m", value)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):  # and through the synchronous batch path / the server
        client.log_batch(run_id, [("m", value, 0, 0)])  # type: ignore[list-item]
    assert client.get_run(run_id).data.metrics == {}


@pytest.mark.parametrize("key", ["../etc", "a/../b", "/abs", "a//b", "x" * 251, "semi;colon", ""])
def test_bad_keys_are_refused(client: Client, exp: str, key: str) -> None:
    run_id = client.create_run(exp, capture_env=False).info.run_id
    with pytest.raises(InvalidInput):
        client.log_param(run_id, key, 1)
    with pytest.raises(InvalidInput):
        client.set_tag(run_id, key, 1)
    with pytest.raises(InvalidInput):
        client.log_metric(run_id, key, 1.0)
    assert client.get_run(run_id).data.params == {}


def test_unknown_and_malformed_run_ids(client: Client) -> None:
    with pytest.raises(NotFound):
        client.get_run("0" * 32)
    with pytest.raises(InvalidInput):
        client.get_run("not-a-run")
    with pytest.raises(NotFound):
        client.log_param("f" * 32, "a", 1)


def test_finished_run_refuses_params_metrics_and_artifacts(
    client: Client, exp: str, tmp_path: Path
) -> None:
    run_id = client.create_run(exp, capture_env=False).info.run_id
    client.log_metric(run_id, "m", 1.0)
    client.end_run(run_id)
    with pytest.raises(Conflict, match="FINISHED"):
        client.log_param(run_id, "late", 1)
    with pytest.raises(Conflict, match="FINISHED"):
        client.log_batch(run_id, [("m", 2.0, 1, 1)])
    client.log_metric(run_id, "m", 2.0, step=1)  # buffered: refused at the next flush
    with pytest.raises(Conflict, match="FINISHED"):
        client.flush(run_id)
    f = tmp_path / "late.txt"
    f.write_text("late")
    with pytest.raises(Conflict):
        client.log_artifact(run_id, f)
    client.set_tag(run_id, "reviewed", "yes")  # tags annotate finished runs
    run = client.get_run(run_id)
    assert run.data.metrics == {"m": 1.0} and run.data.tags == {"reviewed": "yes"}


def test_search_filters_order_and_paging(client: Client, exp: str) -> None:
    for i in range(12):
        run_id = client.create_run(exp, run_name=f"r{i:02d}", capture_env=False).info.run_id
        client.log_batch(
            run_id,
            [("acc", i / 10, 0, 0), ("loss", 1 - i / 10, 0, 0)],
            params={"lr": "0.01" if i % 2 else "0.1", "model": "rf" if i < 6 else "gbm"},
            tags={"team": "a" if i % 3 else "b"},
        )

    def names(filter: str, **kw: object) -> list[str]:
        return [r.info.run_name for r in client.search_runs("exp", filter, **kw).items]  # type: ignore[arg-type]

    assert names("metrics.acc > 0.95", order_by=["metrics.acc"]) == ["r10", "r11"]
    assert names(
        "metrics.acc >= 0.5 and params.lr = '0.01' and tags.team != 'b'", order_by=["run_name"]
    ) == ["r05", "r07", "r11"]
    assert names(
        "params.model = 'rf' and (metrics.acc < 0.15 or metrics.acc > 0.45)", order_by=["run_name"]
    ) == ["r00", "r01", "r05"]
    assert names("params.model IN ('gbm') and not metrics.acc < 1.0", order_by=["run_name"]) == [
        "r10",
        "r11",
    ]
    assert names("attributes.run_name LIKE 'r1%'", order_by=["metrics.loss DESC"]) == ["r10", "r11"]
    assert names("tags.missing IS NULL and metrics.acc = 0", order_by=[]) == ["r00"]
    assert names("run_name ILIKE 'R0_'", order_by=["run_name DESC"])[:2] == ["r09", "r08"]
    collected, token = [], None
    while True:
        page = client.search_runs(
            "exp", None, order_by=["metrics.acc DESC"], max_results=5, page_token=token
        )
        collected += [r.info.run_name for r in page.items]
        token = page.next_page_token
        if not token:
            break
    assert collected == [f"r{i:02d}" for i in range(11, -1, -1)]


@pytest.mark.parametrize(
    ("bad", "column"),
    [
        ("metrics.acc >> 1", 14),
        ("metrics.acc > 'x'", 15),
        ("params.lr = 0.1", 13),
        ("foo.acc > 1", 1),
        ("bogus = 1", 1),
        ("metrics.acc > 1 and", 20),
        ("(metrics.acc > 1", 17),
    ],
)
def test_malformed_filters_point_at_the_bad_token(
    client: Client, exp: str, bad: str, column: int
) -> None:
    with pytest.raises(InvalidInput) as caught:
        client.search_runs("exp", bad)
    assert caught.value.details["column"] == column
    assert "^" in caught.value.message


def test_artifacts_files_folders_and_escapes(client: Client, exp: str, tmp_path: Path) -> None:
    run_id = client.create_run(exp, capture_env=False).info.run_id
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("A")
    (folder / "sub" / "b.txt").write_text("B")
    (folder / "dup.txt").write_text("A")  # same bytes as a.txt: one blob
    client.log_artifact(run_id, folder)
    client.log_text(run_id, "hello", "notes/readme.md")
    client.log_dict(run_id, {"x": 1}, "config.json")
    import pandas as pd

    client.log_dataframe(run_id, pd.DataFrame({"a": [1, 2]}), "tables/t.parquet")
    paths = [a.path for a in client.list_artifacts(run_id)]
    assert paths == [
        "config.json",
        "notes/readme.md",
        "plots/a.txt",
        "plots/dup.txt",
        "plots/sub/b.txt",
        "tables/t.parquet",
    ]
    assert [a.path for a in client.list_artifacts(run_id, "plots/sub")] == ["plots/sub/b.txt"]
    assert client.read_artifact(run_id, "notes/readme.md") == b"hello"
    local = client.download_artifacts(run_id, "plots", tmp_path / "dl")
    assert (local / "sub" / "b.txt").read_text() == "B"
    assert pd.read_parquet(client.download_artifacts(run_id, "tables/t.parquet", tmp_path / "t"))[
        "a"
    ].tolist() == [1, 2]
    for escape in ("../evil.txt", "/etc/passwd", "a/../../b", "c:\\x"):
        with pytest.raises(InvalidInput):
            client.log_text(run_id, "x", escape)
    with pytest.raises(NotFound):
        client.read_artifact(run_id, "nope.txt")
    link = folder / "leak"
    link.symlink_to("/etc/hostname")
    with pytest.raises(InvalidInput, match="outside"):
        client.log_artifact(run_id, folder)
    assert len(client.list_artifacts(run_id)) == 6


def test_environment_is_captured(client: Client, exp: str) -> None:
    run = client.create_run(exp)
    tags = run.data.tags
    assert tags["opsloop.python.version"].count(".") == 2
    assert "opsloop.env.lock_hash" in tags and "opsloop.source.command" in tags
    lock = client.read_artifact(run.info.run_id, "_opsloop/requirements.lock").decode()
    assert "opsloop==" in lock.lower() or "sqlalchemy==" in lock.lower()
