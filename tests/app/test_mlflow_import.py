"""``opsloop import mlflow``: stores written by the real mlflow client, copied and checked
through opsloop's SDK, on the embedded store and through a server."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opsloop.app.cli import main
from opsloop.app.mlflow_import.copier import open_reader
from opsloop.app.mlflow_import.copier import run_import
from opsloop.app.mlflow_import.run_copier import COMPLETE_TAG
from opsloop.app.mlflow_import.run_copier import ORIGIN_TAG
from tests.app.mlflow_stores import Built
from tests.app.mlflow_stores import build_file_store
from tests.app.mlflow_stores import build_sql_store


@pytest.fixture(scope="module")
def sql_store(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_sql_store(tmp_path_factory.mktemp("mlflow"))


def _import(client: Any, uri: str, **options: Any) -> Any:
    reader = open_reader(uri)
    try:
        return run_import(client, reader, **options)
    finally:
        reader.close()


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["import", "mlflow", *args])
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def _mlflow_history(uri: str, run_id: str, key: str) -> list[tuple[int, int, float]]:
    path = uri.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "select step, timestamp, value from metrics where run_uuid=? and key=? "
            "and is_nan=0 order by step, timestamp",
            (run_id, key),
        ).fetchall()
    return [(int(s), int(t), float(v)) for s, t, v in rows]


def test_import_copies_everything_and_a_second_import_copies_nothing(
    client: Any, sql_store: Built
) -> None:
    report = _import(client, sql_store.uri)
    assert report.copied["experiments"] == 3 and report.copied["runs"] == 4  # Default too
    assert report.copied["versions"] == 2 and report.copied["aliases"] == 1
    assert report.copied["artifacts"] >= 2 and report.copied["datasets"] == 1
    assert not report.conflicts

    parent = client.get_run(sql_store.parent)
    assert parent.data.params == {"lr": "0.1", "depth": "3"}
    assert parent.data.tags["stage"] == "dev" and parent.data.tags[ORIGIN_TAG] == "mlflow"
    assert COMPLETE_TAG in parent.data.tags
    assert parent.info.status.value == "FINISHED" and parent.info.end_time is not None
    assert '"name":"train"' in parent.data.tags["mlflow.inputs"]
    child = client.get_run(sql_store.child)
    assert child.info.parent_run_id == sql_store.parent
    for run_id, key in ((sql_store.parent, "loss"), (sql_store.child, "acc")):
        history = client.get_metric_history(run_id, key)
        copied = list(zip(history.steps, history.timestamps, history.values, strict=True))
        assert copied == _mlflow_history(sql_store.uri, run_id, key)
    paths = {a.path for a in client.list_artifacts(sql_store.parent)}
    assert {"notes.txt", "plots/a.csv"} <= paths
    assert client.read_artifact(sql_store.parent, "notes.txt") == b"hello"
    other = client.get_run(sql_store.other)
    assert other.info.lifecycle_stage == "deleted" and other.data.params == {"p": "v"}
    experiment = client.get_experiment_by_name("churn")
    assert experiment.tags["team"] == "growth"

    model = client.models.get("churn-model")
    assert model.aliases == {"champion": 2} and model.tags["owner"] == "ml"
    version = client.models.version("churn-model@champion")
    assert version.tags["mlflow.version"] == "2" and version.run_id == sql_store.parent
    loaded = client.models.load("churn-model@2")
    assert loaded.predict(np.asarray(sql_store.example)).tolist() == sql_store.predictions
    nan_skips = [s for s in report.skipped if s.kind == "metric value"]
    assert len(nan_skips) == 1 and "finite" in nan_skips[0].reason

    again = _import(client, sql_store.uri)
    assert again.copied_nothing and not again.conflicts
    assert again.already["runs"] == 4 and again.already["versions"] == 2
    assert again.already["aliases"] == 1
    assert len(client.get_metric_history(sql_store.parent, "loss").values) == 5


def test_an_interrupted_run_is_completed_without_duplicate_points(
    tmp_path: Path, sql_store: Built
) -> None:
    from opsloop import Client

    client = Client()
    partial = tmp_path / "partial.db"
    shutil.copy(sql_store.uri.removeprefix("sqlite:///"), partial)
    with sqlite3.connect(partial) as db:  # the first import only got part of the points
        db.execute("delete from metrics where run_uuid=? and step>=2", (sql_store.parent,))
    _import(client, f"sqlite:///{partial}", experiment="churn")
    # what a kill between the metrics and the closing mark leaves: no mark, still RUNNING
    client.delete_tag(sql_store.parent, COMPLETE_TAG)
    client.update_run(sql_store.parent, status="RUNNING")

    report = _import(client, sql_store.uri, experiment="churn")
    assert report.copied["runs"] == 1 and report.already["runs"] == 2
    assert report.already["metric values"] == 2 and report.copied["metric values"] == 3
    history = client.get_metric_history(sql_store.parent, "loss")
    copied = list(zip(history.steps, history.timestamps, history.values, strict=True))
    assert copied == _mlflow_history(sql_store.uri, sql_store.parent, "loss")
    run = client.get_run(sql_store.parent)
    assert run.info.status.value == "FINISHED" and COMPLETE_TAG in run.data.tags


def test_a_corrupt_store_reports_the_rows_it_skipped(tmp_path: Path, sql_store: Built) -> None:
    from opsloop import Client

    damaged = tmp_path / "damaged.db"
    shutil.copy(sql_store.uri.removeprefix("sqlite:///"), damaged)
    with sqlite3.connect(damaged) as db:
        db.execute("update runs set run_uuid='not-a-run-id' where run_uuid=?", (sql_store.child,))
        db.execute("update metrics set value='garbage' where run_uuid=? and step=0",
                   (sql_store.parent,))  # fmt: skip
        db.execute("delete from datasets")
    report = _import(Client(), f"sqlite:///{damaged}", experiment="churn")
    reasons = {(s.kind, s.reason) for s in report.skipped}
    assert ("run", "its id is not 32 hex digits") in reasons
    assert ("metric value", "its value, step or timestamp is not a number") in reasons
    assert ("dataset", "its dataset row is missing") in reasons
    assert report.copied["runs"] == 2  # the parent and the diverged run
    assert len(Client().get_metric_history(sql_store.parent, "loss").values) == 4


def test_a_run_id_opsloop_holds_already_is_a_conflict_not_an_overwrite(
    sql_store: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    from opsloop import Client

    client = Client()
    mine = client.create_experiment("churn")
    client.tracking_backend.create_run(mine.experiment_id, run_id=sql_store.parent)
    elsewhere = client.create_experiment("elsewhere")
    client.tracking_backend.create_run(elsewhere.experiment_id, run_id=sql_store.child)
    code, out, _ = _cli(["--tracking-uri", sql_store.uri, "--experiment", "churn"], capsys)
    assert code == 4
    assert "conflicts" in out and sql_store.parent in out and sql_store.child in out
    assert client.get_run(sql_store.parent).data.params == {}
    assert client.get_run(sql_store.child).info.experiment_id == elsewhere.experiment_id
    diverged = client.search_runs("churn", "tags.mlflow.runName = 'diverged'").items
    assert len(diverged) == 1 and COMPLETE_TAG in diverged[0].data.tags


def test_file_store_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from opsloop import Client

    built = build_file_store(tmp_path)
    code, out, _ = _cli(["--tracking-uri", built.uri, "--experiment", "vision"], capsys)
    assert code == 0 and "runs" in out
    run = Client().get_run(built.parent)
    assert run.data.params == {"size": "224"} and run.data.tags["kind"] == "cnn"
    assert Client().get_metric_history(built.parent, "val/acc").values == [0.5, 0.6, 0.7]
    assert '"context":"eval"' in run.data.tags["mlflow.inputs"]
    code, out, _ = _cli(["--tracking-uri", built.uri, "--experiment", "vision"], capsys)
    assert code == 0 and "Nothing new to copy" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--tracking-uri", "sqlite:///missing.db"], 2, "no such MLflow database file"),
        (["--tracking-uri", "nowhere/mlruns"], 2, "no such MLflow store folder"),
        (["--tracking-uri", "http://127.0.0.1:9"], 2, "cannot reach the MLflow server"),
        (["--tracking-uri", "sqlite:///garbage.db"], 2, "cannot read the MLflow database"),
        (["--tracking-uri", "sqlite:///empty.db"], 2, "is not an MLflow tracking database"),
    ],
)
def test_bad_sources_fail_in_one_line(
    args: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("garbage.db").write_bytes(b"this is not a database" * 100)
    sqlite3.connect("empty.db").execute("create table t (x)").connection.close()
    exit_code, _, err = _cli(args, capsys)
    assert exit_code == code
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_unknown_experiment_names_close_ones(
    sql_store: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(["--tracking-uri", sql_store.uri, "--experiment", "chrun"], capsys)
    assert code == 3 and "did you mean churn" in err and err.count("\n") == 1


@pytest.mark.postgres
def test_import_from_mlflow_on_postgresql(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    import mlflow

    from opsloop import Client

    mlflow.set_tracking_uri(pg_url)  # MLflow writes its own schema into this test's schema
    try:
        experiment = mlflow.create_experiment("pg-runs")
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_param("k", "v")
            for step in range(4):
                mlflow.log_metric("m", step * 2.0, step=step)
    finally:
        mlflow.set_tracking_uri(None)
    plain = "postgresql://" + pg_url.split("://", 1)[1]  # the URL as MLflow users write it
    code, out, _ = _cli(["--tracking-uri", plain, "--experiment", "pg-runs", "--json"], capsys)
    assert code == 0 and '"runs": 1' in out
    imported = Client().get_run(run.info.run_id)
    assert imported.data.params == {"k": "v"}
    assert Client().get_metric_history(run.info.run_id, "m").values == [0.0, 2.0, 4.0, 6.0]


def test_artifacts_of_a_moved_store_come_from_artifacts_root(
    tmp_path: Path, sql_store: Built
) -> None:
    from opsloop import Client

    moved = tmp_path / "moved.db"
    shutil.copy(sql_store.uri.removeprefix("sqlite:///"), moved)
    root = Path(sql_store.uri.removeprefix("sqlite:///")).parent / "mlruns"
    with sqlite3.connect(moved) as db:  # as if the store had been made on another machine
        db.execute("update runs set artifact_uri = replace(artifact_uri, ?, 'file:///gone')",
                   (root.parent.as_uri(),))  # fmt: skip
    without = _import(Client(), f"sqlite:///{moved}", experiment="churn")
    assert without.copied["artifacts"] == 0
    assert any("pass --artifacts" in s.reason for s in without.skipped if s.kind == "artifacts")
    Client().delete_tag(sql_store.parent, COMPLETE_TAG)  # let the next import complete it
    report = _import(Client(), f"sqlite:///{moved}", experiment="churn", artifacts=root)
    assert report.copied["artifacts"] >= 2
    assert Client().read_artifact(sql_store.parent, "plots/a.csv") == b"x,y\n1,2\n"


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Any:
    """A real ``mlflow server`` on loopback (its own SQLite store, proxied artifacts)."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    from tests.conftest import free_port

    port = free_port()
    artifacts = tmp_path / "server-artifacts"
    command = [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1", "--artifacts-destination", str(artifacts),
               "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}"]  # fmt: skip
    # Without huey installed, a server with job execution on (mlflow's default) started a new
    # Python every second or so trying to run its job consumer, for as long as it was up; the
    # import never submits a job.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start")
        yield url, artifacts
    finally:
        process.terminate()
        process.wait(30)


def test_import_from_a_running_mlflow_server(
    mlflow_server: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    from opsloop import Client

    url, artifacts = mlflow_server
    mlflow.set_tracking_uri(url)
    try:
        experiment = mlflow.create_experiment("served")
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_param("k", "v")
            for step in range(3):
                mlflow.log_metric("m", step / 2, step=step)
            (tmp_path / "out.txt").write_text("from the server")
            mlflow.log_artifact(str(tmp_path / "out.txt"))
            features = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
            model = LogisticRegression().fit(features, [0, 1, 1, 0])
            logged = mlflow.sklearn.log_model(
                model, name="model", input_example=features[:2], pip_requirements=["scikit-learn"]
            )
        mlflow.register_model(logged.model_uri, "served-model")
        mlflow.MlflowClient().set_registered_model_alias("served-model", "prod", 1)
    finally:
        mlflow.set_tracking_uri(None)
    args = ["--tracking-uri", url, "--artifacts", str(artifacts)]
    code, out, _ = _cli(args, capsys)
    assert code == 0 and "runs" in out
    client = Client()
    assert client.models.get("served-model").aliases == {"prod": 1}
    served = client.models.load("served-model@prod")
    assert served.predict(features).tolist() == model.predict(features).tolist()
    assert client.get_run(run.info.run_id).data.params == {"k": "v"}
    assert client.get_metric_history(run.info.run_id, "m").values == [0.0, 0.5, 1.0]
    assert client.read_artifact(run.info.run_id, "out.txt") == b"from the server"
    code, out, _ = _cli(args, capsys)
    assert code == 0 and "Nothing new to copy" in out


def test_a_model_opsloop_cannot_load_is_kept_as_an_mlflow_model(tmp_path: Path) -> None:
    import mlflow
    import yaml
    from mlflow import MlflowClient

    from opsloop import Client

    folder = tmp_path / "torch-model"
    folder.mkdir()
    mlmodel = {"flavors": {"pytorch": {"model_data": "data"}, "python_function": {}}}
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    (folder / "data").write_bytes(b"\x00weights")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("nets", artifact_location=tmp_path.as_uri())
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_artifacts(str(folder), artifact_path="model")
        MlflowClient().create_registered_model("net")
        MlflowClient().create_model_version(
            "net", f"runs:/{run.info.run_id}/model", run.info.run_id
        )
    finally:
        mlflow.set_tracking_uri(None)
    report = _import(Client(), uri)
    assert report.copied["versions"] == 1
    kept = [s for s in report.skipped if s.kind == "version flavor"]
    assert len(kept) == 1 and "pytorch has no opsloop flavor" in kept[0].reason
    version = Client().models.version("net@1")
    assert version.flavor == "mlflow" and version.run_id == run.info.run_id
