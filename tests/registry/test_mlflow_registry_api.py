"""MLflow's registry and logged-model REST calls against a real opsloop server, made by the real
``mlflow`` client: ``log_model(..., registered_model_name=...)``, ``register_model``, aliases,
tags, search, rename, delete and MLflow's error codes; the versions are ordinary opsloop
registry versions (files, flavor, origin, lineage)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

PIP = ["scikit-learn"]  # declared: inferring requirements would load the model in a subprocess


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("mlflow-registry")
    with LiveServer(f"sqlite:///{root / 'opsloop.db'}", str(root / "blobs")) as server:
        yield server


def _point_mlflow_at(monkeypatch: pytest.MonkeyPatch, url: str, token: str | None = None) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    if token:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    mlflow.set_experiment(f"exp-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def server(sqlite_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    _point_mlflow_at(monkeypatch, sqlite_server.url)
    yield sqlite_server
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture(scope="module")
def classifier() -> Any:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    return LogisticRegression(max_iter=300).fit(X, y)


@pytest.fixture(scope="module")
def signature(classifier: Any) -> Any:
    from sklearn.datasets import load_iris

    X = load_iris(as_frame=True).data.head()
    return mlflow.models.infer_signature(X, classifier.predict(X))


def _name(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:6]}"


def _code(excinfo: pytest.ExceptionInfo[MlflowException]) -> str:
    return str(excinfo.value.error_code)


def _log_and_register(classifier: Any, name: str | None, signature: Any = None) -> tuple[str, Any]:
    with mlflow.start_run() as run:
        mlflow.log_param("C", 1.0)
        info = mlflow.sklearn.log_model(
            classifier,
            name="model",
            registered_model_name=name,
            pip_requirements=PIP,
            signature=signature,
        )
    return run.info.run_id, info


def test_log_model_with_a_registered_name_is_an_opsloop_version(
    server: LiveServer, classifier: Any, signature: Any, tmp_path: Path
) -> None:
    name = _name("churn")
    run_id, info = _log_and_register(classifier, name, signature)
    assert str(info.registered_model_version) == "1"

    client = MlflowClient()
    version = client.get_model_version(name, "1")
    assert (version.run_id, version.source, version.status) == (
        run_id,
        f"models:/{info.model_id}",
        "READY",
    )
    logged = client.get_logged_model(info.model_id)
    assert logged.source_run_id == run_id and logged.name == "model"
    assert logged.params["C"] == "1.0"
    assert [m.model_id for m in client.search_logged_models([logged.experiment_id])] == [
        info.model_id
    ]
    assert logged.tags["mlflow.modelVersions"]  # register_model linked the version back

    # opsloop's own registry sees a real version: its files are the MLflow model directory
    http = httpx.Client(base_url=server.url, timeout=30)
    assert name in [m["name"] for m in http.get("/api/models").json()["items"]]
    shown = http.get(f"/api/models/{name}/versions/1").json()
    assert shown["flavor"] == "mlflow" and shown["run_id"] == run_id
    assert shown["tags"]["opsloop.origin"] == "mlflow"
    assert shown["tags"]["opsloop.mlflow.model_id"] == info.model_id
    assert "sklearn" in shown["tags"]["opsloop.mlflow.flavors"]
    assert [c["name"] for c in shown["signature"]["inputs"]["columns"]][:1] == ["sepal length (cm)"]
    files = {path for path, _, _ in http.get(f"/api/models/{name}/versions/1/manifest").json()}
    assert {"MLmodel", "requirements.txt", "opsloop-model.json"} <= files
    assert files & {"model.pkl", "model.skops"}
    lineage = http.get("/api/lineage", params={"kind": "model", "ref": f"{name}@1"})
    assert run_id in lineage.text
    page = http.get(f"/models/{name}/versions/1", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "mlflow" in page.text
    cli = subprocess.run(
        [str(Path(sys.executable).with_name("opsloop")), "models", "list", "--json"],
        env={**os.environ, "OPSLOOP_SERVER_URL": server.url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0 and name in cli.stdout, cli.stderr

    # and MLflow's client downloads exactly what it uploaded
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/1", dst_path=str(tmp_path)))
    assert "MLmodel" in {p.name for p in local.iterdir()}
    assert "opsloop-model.json" not in {p.name for p in local.iterdir()}


def test_register_model_from_a_runs_uri(server: LiveServer, classifier: Any) -> None:
    run_id, info = _log_and_register(classifier, None)
    name = _name("from-run")
    version = mlflow.register_model(f"runs:/{run_id}/model", name)
    assert (version.version, version.run_id) == ("1", run_id)
    assert version.source == f"models:/{info.model_id}"
    again = mlflow.register_model(f"models:/{name}/1", name)  # copy a version forward
    assert again.version == "2" and again.run_id == run_id


def test_register_model_from_a_run_folder_logged_as_artifacts(
    server: LiveServer, classifier: Any, tmp_path: Path
) -> None:
    """MLflow 2's way: the model directory among the run's own artifacts."""
    mlflow.sklearn.save_model(classifier, tmp_path / "saved", pip_requirements=PIP)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(tmp_path / "saved"), "legacy")
    name = _name("legacy")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/legacy", name)
    assert version.run_id == run.info.run_id
    uri = MlflowClient().get_model_version_download_uri(name, "1")
    assert uri.endswith(f"/{run.info.run_id}/artifacts/legacy")


def test_aliases_set_get_and_delete(server: LiveServer, classifier: Any) -> None:
    name = _name("aliased")
    _log_and_register(classifier, name)
    _log_and_register(classifier, name)
    client = MlflowClient()
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "challenger", 2)
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_registered_model(name).aliases == {"champion": "1", "challenger": "2"}
    client.set_registered_model_alias(name, "champion", "2")  # moves
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert client.get_model_version(name, "2").aliases == ["challenger", "champion"]

    client.delete_registered_model_alias(name, "challenger")
    with pytest.raises(MlflowException) as missing:
        client.get_model_version_by_alias(name, "challenger")
    assert _code(missing) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as bad:
        client.set_registered_model_alias(name, "not an alias!", "1")
    assert _code(bad) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as no_version:
        client.set_registered_model_alias(name, "later", "9")
    assert _code(no_version) == "RESOURCE_DOES_NOT_EXIST"
    # every move is in opsloop's alias history
    history = httpx.get(f"{server.url}/api/models/{name}/alias-history", timeout=30).json()
    assert {e["kind"] for e in history} >= {"set", "delete"}


@pytest.mark.filterwarnings("ignore:.*deprecated since 2.9.0:FutureWarning")  # stages
def test_tags_search_rename_update_and_delete(server: LiveServer, classifier: Any) -> None:
    client = MlflowClient()
    name = _name("tagged")
    client.create_registered_model(name, tags={"team": "risk"}, description="first")
    run_id, _ = _log_and_register(classifier, name)
    client.set_registered_model_tag(name, "stage", "beta")
    client.delete_registered_model_tag(name, "team")
    assert client.get_registered_model(name).tags == {"stage": "beta"}
    client.set_model_version_tag(name, "1", "checked", "yes")
    client.delete_model_version_tag(name, "1", "checked")
    client.set_model_version_tag(name, "1", "owner", "ana")
    assert client.get_model_version(name, "1").tags == {"owner": "ana"}
    client.update_registered_model(name, description="second")
    client.update_model_version(name, "1", description="the first one")
    assert client.get_registered_model(name).description == "second"
    assert client.get_model_version(name, "1").description == "the first one"

    stem = name.split("-")[0]
    assert name in [m.name for m in client.search_registered_models(f"name LIKE '{stem}-%'")]
    assert [m.name for m in client.search_registered_models("tags.stage = 'beta'")] == [name]
    found = client.search_model_versions(f"run_id = '{run_id}'")
    assert [(v.name, v.version) for v in found] == [(name, "1")]
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == ["1"]
    assert [v.version for v in client.get_latest_versions(name)] == ["1"]
    client.transition_model_version_stage(name, "1", "Staging")
    assert client.get_model_version(name, "1").current_stage == "Staging"

    renamed = _name("renamed")
    client.rename_registered_model(name, renamed)
    assert client.get_model_version(renamed, "1").run_id == run_id
    with pytest.raises(MlflowException) as gone:
        client.get_registered_model(name)
    assert _code(gone) == "RESOURCE_DOES_NOT_EXIST"

    client.set_registered_model_alias(renamed, "champion", "1")
    _log_and_register(classifier, renamed)
    client.delete_model_version(renamed, "1")  # its alias goes with it, as in MLflow
    assert [v.version for v in client.search_model_versions(f"name = '{renamed}'")] == ["2"]
    client.set_registered_model_alias(renamed, "champion", "2")
    client.delete_registered_model(renamed)
    assert renamed not in [m.name for m in client.search_registered_models()]


def test_errors_take_mlflows_codes(server: LiveServer) -> None:
    client = MlflowClient()
    with pytest.raises(MlflowException) as missing:
        client.get_registered_model(_name("nobody"))
    assert _code(missing) == "RESOURCE_DOES_NOT_EXIST"
    name = _name("dup")
    client.create_registered_model(name)
    with pytest.raises(MlflowException) as duplicate:
        client.create_registered_model(name)
    assert _code(duplicate) == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as bad_name:
        client.create_registered_model("no spaces allowed")
    assert _code(bad_name) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as bad_version:
        client.get_model_version(name, "one")
    assert _code(bad_version) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as bad_filter:
        client.search_registered_models("colour = 'blue'")
    assert _code(bad_filter) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as bad_source:
        client.create_model_version(name, "s3://bucket/elsewhere/model", await_creation_for=0)
    assert _code(bad_source) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as no_run:
        client.create_model_version(name, f"runs:/{uuid.uuid4().hex}/model")
    assert _code(no_run) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as no_logged:
        client.get_logged_model(f"m-{uuid.uuid4().hex}")
    assert _code(no_logged) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as no_tag:
        client.delete_registered_model_tag(name, "absent")
    assert _code(no_tag) == "RESOURCE_DOES_NOT_EXIST"


def test_not_an_mlflow_model_folder_is_refused(server: LiveServer, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no MLmodel here")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "notes.txt"), "stuff")
    with pytest.raises(MlflowException) as refused:
        MlflowClient().create_model_version(_name("stuff"), f"runs:/{run.info.run_id}/stuff")
    assert _code(refused) == "INVALID_PARAMETER_VALUE"
    assert "MLmodel" in str(refused.value)


def test_roles_apply_to_the_registry_calls(
    classifier: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    from tests.governance.conftest import bootstrap

    monkeypatch.setenv("OPSLOOP_AUTH", "users")
    blobs = str(tmp_path / "server-blobs")
    keys = bootstrap(sqlite_url, blobs)
    with LiveServer(sqlite_url, blobs) as users_server:
        _point_mlflow_at(monkeypatch, users_server.url, keys["eddie"])  # an editor
        name = _name("governed")
        _log_and_register(classifier, name)
        client = MlflowClient()
        client.set_registered_model_alias(name, "candidate", "1")
        with pytest.raises(MlflowException) as protected:
            client.set_registered_model_alias(name, "champion", "1")
        assert _code(protected) == "PERMISSION_DENIED"

        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", keys["vic"])  # a viewer reads, only
        assert MlflowClient().get_model_version_by_alias(name, "candidate").version == "1"
        with pytest.raises(MlflowException) as viewer:
            MlflowClient().create_registered_model(_name("nope"))
        assert _code(viewer) == "PERMISSION_DENIED"

        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", keys["mona"])  # a maintainer may
        MlflowClient().set_registered_model_alias(name, "champion", "1")


@pytest.mark.postgres
def test_log_register_and_alias_on_postgres(
    pg_url: str, tmp_path: Path, classifier: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LiveServer(pg_url, str(tmp_path / "blobs")) as pg_server:
        _point_mlflow_at(monkeypatch, pg_server.url)
        name = _name("pg")
        run_id, info = _log_and_register(classifier, name)
        client = MlflowClient()
        client.set_registered_model_alias(name, "champion", "1")
        assert client.get_model_version_by_alias(name, "champion").run_id == run_id
        experiment_id = client.get_run(run_id).info.experiment_id
        logged = client.search_logged_models([experiment_id], filter_string="name = 'model'")
        assert [m.model_id for m in logged] == [info.model_id]
        manifest = httpx.get(f"{pg_server.url}/api/models/{name}/versions/1/manifest", timeout=30)
        assert "MLmodel" in {path for path, _, _ in manifest.json()}
