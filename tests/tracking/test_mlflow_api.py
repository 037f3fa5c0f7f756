"""MLflow's tracking REST API on ``opsloop server``, driven by the real ``mlflow`` client.

An unmodified MLflow script (fluent API and ``MlflowClient``) logs to a live opsloop server over
HTTP, and what it logs is read back both through MLflow and through opsloop's own client: one
store, whatever door it came in by.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer
from tests.conftest import free_port
from tests.tracking.mlflow_fixtures import use_mlflow

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Param  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402


@pytest.fixture
def server(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:
    with LiveServer(database_url, str(tmp_path / "server-blobs")) as live:
        use_mlflow(monkeypatch, live.url)
        yield live


@pytest.fixture
def sqlite_server(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:
    with LiveServer(sqlite_url, str(tmp_path / "server-blobs")) as live:
        use_mlflow(monkeypatch, live.url)
        yield live


def _opsloop(live: LiveServer):  # type: ignore[no-untyped-def]
    from opsloop import Client

    return Client(server_url=live.url)


def test_fluent_script_logs_into_opsloop(server: LiveServer, tmp_path: Path) -> None:
    """The default experiment, params, metric steps, tags, a file and a folder: all land in
    opsloop's run, tagged as coming through MLflow's API, with the same run id."""
    (tmp_path / "model.txt").write_text("weights")
    (tmp_path / "plots" / "inner").mkdir(parents=True)
    (tmp_path / "plots" / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "plots" / "inner" / "b.txt").write_text("b")
    assert MlflowClient().search_runs(["0"]) == []  # MLflow's default experiment, still empty
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"depth": 3, "kind": "tree"})
        mlflow.log_metric("loss", 1.0, step=0)
        mlflow.log_metric("loss", 0.5, step=1)
        mlflow.log_metrics({"loss": 0.25, "acc": 0.9}, step=2)
        mlflow.set_tag("team", "search")
        mlflow.log_artifact(str(tmp_path / "model.txt"))
        mlflow.log_artifacts(str(tmp_path / "plots"), artifact_path="plots")
    run_id = run.info.run_id

    client = MlflowClient()
    got = client.get_run(run_id)
    assert got.info.run_name == "first"
    assert got.info.status == "FINISHED" and got.info.end_time is not None
    assert got.data.params == {"lr": "0.01", "depth": "3", "kind": "tree"}
    assert got.data.metrics == {"loss": 0.25, "acc": 0.9}
    assert got.data.tags["team"] == "search" and got.data.tags["mlflow.runName"] == "first"
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, 0.25)]
    assert client.get_metric_history(run_id, "never-logged") == []
    default = client.get_experiment(got.info.experiment_id)
    assert default.name == "Default"  # MLflow's experiment "0"

    with _opsloop(server) as opsloop:
        same = opsloop.get_run(run_id)
        assert same.info.run_name == "first"
        assert same.data.params["lr"] == "0.01"
        assert same.data.metrics["loss"] == 0.25
        assert same.data.tags["opsloop.origin"] == "mlflow"
        paths = [a.path for a in opsloop.list_artifacts(run_id)]
        assert paths == ["model.txt", "plots/a.csv", "plots/inner/b.txt"]
        assert opsloop.get_metric_history(run_id, "loss").values == [1.0, 0.5, 0.25]


def test_artifacts_up_and_down(sqlite_server: LiveServer, tmp_path: Path) -> None:
    source = tmp_path / "out"
    (source / "deep").mkdir(parents=True)
    (source / "deep" / "x.bin").write_bytes(os.urandom(300_000))
    (source / "top.json").write_text('{"a": 1}')
    client = MlflowClient()
    experiment_id = client.create_experiment("artifacts")
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    client.log_artifact(run_id, str(source / "top.json"))
    client.log_artifacts(run_id, str(source), artifact_path="folder")
    client.log_text(run_id, "hello", "notes/readme.md")

    top = client.list_artifacts(run_id)
    assert [(f.path, f.is_dir) for f in top] == [
        ("folder", True),
        ("notes", True),
        ("top.json", False),
    ]
    inner = client.list_artifacts(run_id, "folder")
    assert [(f.path, f.is_dir, f.file_size) for f in inner] == [
        ("folder/deep", True, None),
        ("folder/top.json", False, 8),
    ]

    one = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="top.json", dst_path=str(tmp_path / "one")
    )
    assert Path(one).read_text() == '{"a": 1}'
    whole = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="folder", dst_path=str(tmp_path / "all")
    )
    got = Path(whole)
    assert (got / "deep" / "x.bin").read_bytes() == (source / "deep" / "x.bin").read_bytes()
    assert (got / "top.json").read_text() == '{"a": 1}'
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/notes/readme.md") == "hello"

    with _opsloop(sqlite_server) as opsloop:  # the same files, in opsloop's blob store
        data = opsloop.read_artifact(run_id, "folder/deep/x.bin")
        assert data == (source / "deep" / "x.bin").read_bytes()


def test_experiments_through_the_client(sqlite_server: LiveServer) -> None:
    client = MlflowClient()
    first = client.create_experiment("churn", tags={"team": "growth"})
    second = client.create_experiment("fraud")
    assert client.get_experiment_by_name("churn").experiment_id == first
    assert client.get_experiment_by_name("nope") is None  # RESOURCE_DOES_NOT_EXIST -> None
    assert client.get_experiment(first).tags == {"team": "growth"}

    names = {e.name for e in client.search_experiments(filter_string="tags.team = 'growth'")}
    assert names == {"churn"}
    assert [e.name for e in client.search_experiments(filter_string="name LIKE 'fr%'")] == ["fraud"]
    page = client.search_experiments(max_results=1, order_by=["name ASC"])
    assert [e.name for e in page] == ["churn"] and page.token
    rest = client.search_experiments(max_results=1, order_by=["name ASC"], page_token=page.token)
    assert [e.name for e in rest] == ["fraud"]

    client.rename_experiment(second, "fraud-v2")
    client.set_experiment_tag(second, "stage", "dev")
    assert client.get_experiment(second).name == "fraud-v2"
    client.delete_experiment(second)
    assert client.get_experiment(second).lifecycle_stage == "deleted"
    deleted = client.search_experiments(view_type=mlflow.entities.ViewType.DELETED_ONLY)
    assert [e.name for e in deleted] == ["fraud-v2"]
    client.restore_experiment(second)
    assert client.get_experiment(second).lifecycle_stage == "active"

    with pytest.raises(MlflowException) as taken:
        client.create_experiment("churn")
    assert taken.value.error_code == "RESOURCE_ALREADY_EXISTS"
    mlflow.set_experiment("churn")  # finds it, as on MLflow's server
    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == first


def test_search_runs_with_mlflow_filters(sqlite_server: LiveServer) -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment("search")
    ids = {}
    for i in range(5):
        run = client.create_run(experiment_id, run_name=f"r{i}", tags={"parity": str(i % 2)})
        client.log_batch(
            run.info.run_id,
            metrics=[mlflow.entities.Metric("acc", i / 10, 0, 0)],
            params=[mlflow.entities.Param("lr", f"0.{i}")],
        )
        if i < 3:
            client.set_terminated(run.info.run_id)
        ids[f"r{i}"] = run.info.run_id

    def names(**kwargs: object) -> list[str]:
        runs = client.search_runs([experiment_id], **kwargs)  # type: ignore[arg-type]
        return [r.info.run_name for r in runs]

    assert names(filter_string="metrics.acc >= 0.3", order_by=["metrics.acc DESC"]) == [
        "r4",
        "r3",
    ]
    assert sorted(names(filter_string="params.lr = '0.2' or tags.parity = '1'")) == [
        "r1",
        "r2",
        "r3",
    ]
    assert sorted(names(filter_string="attributes.status = 'FINISHED'")) == ["r0", "r1", "r2"]
    assert names(filter_string="tags.mlflow.runName = 'r3'") == ["r3"]
    assert names(filter_string="attributes.run_name LIKE 'r%'", order_by=["params.lr"]) == [
        f"r{i}" for i in range(5)
    ]

    first = client.search_runs([experiment_id], order_by=["metrics.acc"], max_results=2)
    assert [r.info.run_name for r in first] == ["r0", "r1"] and first.token
    second = client.search_runs(
        [experiment_id], order_by=["metrics.acc"], max_results=2, page_token=first.token
    )
    assert [r.info.run_name for r in second] == ["r2", "r3"]

    client.delete_run(ids["r0"])
    assert "r0" not in names()
    deleted = client.search_runs(
        [experiment_id], run_view_type=mlflow.entities.ViewType.DELETED_ONLY
    )
    assert [r.info.run_name for r in deleted] == ["r0"]
    client.restore_run(ids["r0"])
    assert "r0" in names()

    frame = mlflow.search_runs([experiment_id], filter_string="metrics.acc < 0.2")
    assert sorted(frame["tags.mlflow.runName"]) == ["r0", "r1"]


def test_run_updates_tags_and_inputs(sqlite_server: LiveServer) -> None:
    from mlflow.entities import Dataset
    from mlflow.entities import DatasetInput
    from mlflow.entities import InputTag

    client = MlflowClient()
    run = client.create_run(client.create_experiment("updates"))
    run_id = run.info.run_id
    client.set_tag(run_id, "temp", "x")
    client.delete_tag(run_id, "temp")
    client.set_tag(run_id, "mlflow.runName", "renamed")  # MLflow renames the run
    assert client.get_run(run_id).info.run_name == "renamed"
    client.update_run(run_id, name="again")
    dataset = Dataset(name="train", digest="abc123", source_type="local", source='{"uri": "x"}')
    client.log_inputs(
        run_id, [DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])]
    )
    got = client.get_run(run_id)
    assert got.info.run_name == "again"
    assert "temp" not in got.data.tags
    (logged,) = got.inputs.dataset_inputs
    assert (logged.dataset.name, logged.dataset.digest) == ("train", "abc123")
    assert logged.tags[0].value == "training"
    client.set_terminated(run_id, status="KILLED")
    assert client.get_run(run_id).info.status == "KILLED"


def test_errors_in_mlflow_shape(sqlite_server: LiveServer) -> None:
    client = MlflowClient()
    with pytest.raises(MlflowException) as missing:
        client.get_run("0" * 32)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    experiment_id = client.create_experiment("errors")
    run_id = client.create_run(experiment_id).info.run_id
    with pytest.raises(MlflowException) as bad_filter:
        client.search_runs([experiment_id], filter_string="metrics.acc >>> 1")
    assert bad_filter.value.error_code == "INVALID_PARAMETER_VALUE"

    client.log_param(run_id, "lr", "0.1")
    with pytest.raises(MlflowException) as changed:  # a conflict, never an overwrite
        client.log_param(run_id, "lr", "0.2")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "immutable" in changed.value.message
    assert client.get_run(run_id).data.params == {"lr": "0.1"}

    with httpx.Client(base_url=sqlite_server.url) as http:
        for method, path in [
            ("POST", "/api/2.0/mlflow/runs/no-such-call"),
            ("GET", "/ajax-api/2.0/mlflow/experiments/no-such-call"),
            ("GET", "/api/2.0/mlflow/runs/log-metric"),  # a known path, the wrong method
            ("DELETE", "/api/2.0/mlflow-artifacts/artifacts/x/y"),
            ("POST", "/api/3.0/mlflow/traces"),  # MLflow 3's family (its trace export)
            ("GET", "/ajax-api/3.0/mlflow/scorers/list"),
        ]:
            answer = http.request(method, path, json={})
            assert answer.status_code == 404, path
            assert answer.json()["error_code"] == "ENDPOINT_NOT_FOUND"
            endpoint = path.split("-api/")[-1].split("api/")[-1]  # "2.0/mlflow/runs/..."
            assert endpoint in answer.json()["message"], answer.json()  # the endpoint named
        ajax = http.get(
            "/ajax-api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "errors"}
        )
        assert ajax.json()["experiment"]["experiment_id"] == experiment_id
        missing_field = http.post("/api/2.0/mlflow/runs/log-metric", json={"run_id": run_id})
        assert missing_field.status_code == 400
        assert missing_field.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    from mlflow.utils.rest_utils import MlflowHostCreds
    from mlflow.utils.rest_utils import http_request
    from mlflow.utils.rest_utils import verify_rest_response

    response = http_request(MlflowHostCreds(sqlite_server.url), "/api/2.0/mlflow/nope", "GET")
    with pytest.raises(MlflowException) as unsupported:
        verify_rest_response(response, "/api/2.0/mlflow/nope")
    assert unsupported.value.error_code == "ENDPOINT_NOT_FOUND"


def test_an_ended_run_takes_points_and_params_as_on_mlflow(sqlite_server: LiveServer) -> None:
    """MLflow's clients log to runs they ended (a late metric, an evaluation after the fact), and
    MLflow's server accepts it; a deleted run still refuses. opsloop's own API keeps a finished
    run's record final (tests/tracking/test_client_conformance.py)."""
    client = MlflowClient()
    run_id = client.create_run(client.create_experiment("late")).info.run_id
    client.log_metric(run_id, "loss", 0.5, step=0)
    client.set_terminated(run_id)
    client.log_metric(run_id, "loss", 0.25, step=1)
    client.log_batch(run_id, params=[Param("evaluated_on", "holdout")])
    client.log_param(run_id, "late", "yes")
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics == {"loss": 0.25}
    assert run.data.params == {"evaluated_on": "holdout", "late": "yes"}
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [0.5, 0.25]
    client.delete_run(run_id)
    with pytest.raises(MlflowException) as deleted:
        client.log_metric(run_id, "loss", 0.1, step=2)
    assert deleted.value.error_code == "INVALID_PARAMETER_VALUE" and "deleted" in str(deleted.value)


def test_the_server_tells_mlflow_users_where_to_point(tmp_path: Path) -> None:
    """`opsloop server` says, in its help and when it starts, that MLflow scripts only need
    MLFLOW_TRACKING_URI set to it."""
    command = str(Path(sys.executable).parent / "opsloop")
    helped = subprocess.run([command, "server", "--help"], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "200"}, timeout=60)  # fmt: skip
    assert helped.returncode == 0 and "MLFLOW_TRACKING_URI=http://HOST:PORT" in helped.stdout
    port = free_port()
    server = subprocess.Popen(
        [command, "server", "--port", str(port), "--database-url", f"sqlite:///{tmp_path / 'db'}",
         "--blob-url", str(tmp_path / "blobs")],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "OPSLOOP_HOME": str(tmp_path)},
    )  # fmt: skip
    try:
        assert server.stdout is not None
        banner = [server.stdout.readline() for _ in range(4)]
    finally:
        server.terminate()
        server.wait(30)
    assert f"  MLflow clients: MLFLOW_TRACKING_URI=http://127.0.0.1:{port}\n" in banner, banner
