"""Governance on MLflow's API: the server's token or a user's key in ``MLFLOW_TRACKING_TOKEN``,
refusals in MLflow's shape, and in ``users`` mode the same roles as opsloop's own routes
(reads and searches for a viewer, writes and uploads for an editor)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer
from tests.governance.conftest import bootstrap
from tests.tracking.mlflow_fixtures import use_mlflow

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402


@pytest.fixture
def token_server(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(sqlite_url, str(tmp_path / "server-blobs"), token="s3cret") as live:
        yield live


def _error_code(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(MlflowException) as refused:
        call()
    return str(refused.value.error_code)


def test_token_server(
    token_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_mlflow(monkeypatch, token_server.url)
    assert _error_code(lambda: MlflowClient().create_experiment("x")) == "UNAUTHENTICATED"
    use_mlflow(monkeypatch, token_server.url, token="wrong")
    assert _error_code(lambda: MlflowClient().create_experiment("x")) == "PERMISSION_DENIED"

    use_mlflow(monkeypatch, token_server.url, token="s3cret")
    (tmp_path / "f.txt").write_text("data")
    mlflow.set_experiment("guarded")
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
        mlflow.log_artifact(str(tmp_path / "f.txt"))  # the proxy sends the token too
    assert MlflowClient().get_run(run.info.run_id).data.metrics == {"m": 1.0}
    text = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/f.txt")
    assert text == "data"


def test_users_mode_roles(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSLOOP_AUTH", "users")
    blobs = str(tmp_path / "server-blobs")
    keys = bootstrap(sqlite_url, blobs)
    (tmp_path / "f.txt").write_text("data")
    with LiveServer(sqlite_url, blobs) as live:
        use_mlflow(monkeypatch, live.url, token=keys["eddie"])  # an editor writes
        editor = MlflowClient()
        experiment_id = editor.create_experiment("team")
        run_id = editor.create_run(experiment_id).info.run_id
        editor.log_metric(run_id, "acc", 0.5)
        editor.log_artifact(run_id, str(tmp_path / "f.txt"))
        assert editor.get_run(run_id).info.user_id == "eddie"  # the key's user, not the body's

        use_mlflow(monkeypatch, live.url, token=keys["vic"])  # a viewer reads, searches
        viewer = MlflowClient()
        assert viewer.get_run(run_id).data.metrics == {"acc": 0.5}
        assert len(viewer.search_runs([experiment_id], "metrics.acc > 0.1")) == 1
        assert [e.name for e in viewer.search_experiments()] == ["team"]
        assert viewer.get_metric_history(run_id, "acc")[0].value == 0.5
        run = viewer.get_run(run_id)
        assert mlflow.artifacts.load_text(f"{run.info.artifact_uri}/f.txt") == "data"
        assert _error_code(lambda: viewer.create_run(experiment_id)) == "PERMISSION_DENIED"
        assert _error_code(lambda: viewer.log_metric(run_id, "acc", 1.0)) == "PERMISSION_DENIED"
        assert _error_code(lambda: viewer.create_experiment("mine")) == "PERMISSION_DENIED"
        with pytest.raises(Exception, match="403"):  # the artifact proxy: an upload is a write
            viewer.log_artifact(run_id, str(tmp_path / "f.txt"), artifact_path="again")

        use_mlflow(monkeypatch, live.url)  # no key at all
        assert _error_code(lambda: MlflowClient().get_run(run_id)) == "UNAUTHENTICATED"

        # The web UI's ajax-api alias: the same routes, roles and audit log.
        ajax = "/ajax-api/2.0/mlflow/runs/create"
        body = {"experiment_id": experiment_id}
        with httpx.Client(base_url=live.url) as http:
            refused = http.post(ajax, json=body, headers=_bearer(keys["vic"]))
            assert refused.status_code == 403
            assert refused.json()["error_code"] == "PERMISSION_DENIED"
            created = http.post(ajax, json=body, headers=_bearer(keys["eddie"]))
            assert created.json()["run"]["info"]["user_id"] == "eddie"
            audit = http.get(
                "/api/audit", headers=_bearer(keys["root"]), params={"max_results": 500}
            )
        actions = [(e["action"], e["outcome"]) for e in audit.json()["items"]]
        assert ("POST /api/2.0/mlflow/runs/create", 403) in actions
        assert ("POST /api/2.0/mlflow/runs/create", 200) in actions


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
