"""MLflow's logging routes (``log-metric``, ``log-parameter``, ``set-tag``, ``log-batch``) parse
their own bodies (``web.mlflow.mlflow_body``, the cheap path for a client that sends one request
a point); what they refuse must read exactly as a route whose body FastAPI parses, such as
``delete-tag``, so MLflow's client and a script's ``except`` see one API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

API = "/api/2.0/mlflow"
FASTAPI_PARSED = f"{API}/runs/delete-tag"
SELF_PARSED = [f"{API}/runs/{name}" for name in ("log-metric", "log-parameter", "set-tag",
                                                 "log-batch")]  # fmt: skip
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from opsloop.app.server import create_app
    from opsloop.config import load_settings

    tmp_path = tmp_path_factory.mktemp("hot-routes")
    url, blobs = f"sqlite:///{tmp_path / 'db'}", str(tmp_path / "blobs")
    app = create_app(load_settings(home=str(tmp_path), database_url=url, blob_url=blobs))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.opsloop.store.dispose()


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"", JSON),  # no body at all
        (b"{", JSON),  # malformed JSON: the position of the fault is named
        (b'{"run_id": "x",}', JSON),
        (b"nope", JSON),
        (b"[]", JSON),  # JSON, but not an object
        (b"null", JSON),
        (b'{"run_id": "x"}', {"content-type": "text/plain"}),  # not declared as JSON
        (b'{"run_id": "x"}', {}),  # no content type: FastAPI's strict check refuses it too
        (b"[1]", {"content-type": "application/vnd.x+json; charset=utf-8"}),  # JSON by its type
    ],
)
def test_refusals_read_as_fastapi_words_them(
    http: TestClient, body: bytes, headers: dict[str, str]
) -> None:
    expected = http.post(FASTAPI_PARSED, content=body, headers=headers)
    for path in SELF_PARSED:
        answer = http.post(path, content=body, headers=headers)
        assert (answer.status_code, answer.json()) == (expected.status_code, expected.json())
    if expected.status_code == 400:
        assert expected.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_field_errors_and_points_logged(http: TestClient) -> None:
    experiment = http.post(f"{API}/experiments/create", json={"name": "hot"}).json()
    run_id = http.post(f"{API}/runs/create", json={"experiment_id": experiment["experiment_id"]})
    run_id = run_id.json()["run"]["info"]["run_id"]

    bad = http.post(
        f"{API}/runs/log-metric",
        json={"run_id": run_id, "key": "loss", "value": "x", "timestamp": 1},
    )
    assert bad.status_code == 400
    assert bad.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "invalid request: value: Input should be a valid number, "
        "unable to parse string as a number",
    }
    missing = http.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": [{"key": "a"}]})
    assert missing.json()["message"] == (
        "invalid request: metrics.0.value: Field required; metrics.0.timestamp: Field required"
    )
    not_utf8 = http.post(f"{API}/runs/log-metric", content=b'{"run_id": "\xff"}', headers=JSON)
    assert not_utf8.status_code == 400  # bad input, not a server error
    assert not_utf8.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    # Steps and timestamps may come as strings (protobuf JSON's int64), as MLflow's client sends.
    for step in range(3):
        point = {"run_id": run_id, "key": "loss", "value": 1 / (step + 1), "timestamp": "7"}
        assert http.post(f"{API}/runs/log-metric", json={**point, "step": str(step)}).json() == {}
    batch = [{"key": "acc", "value": 0.5, "timestamp": 7, "step": s} for s in range(3)]
    logged = http.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": batch})
    assert logged.json() == {}
    history = http.get(
        f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"}
    ).json()["metrics"]
    assert [(p["step"], p["value"], p["timestamp"]) for p in history] == [
        (0, 1.0, 7), (1, 0.5, 7), (2, 1 / 3, 7),
    ]  # fmt: skip
    run = http.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
    latest = {m["key"]: (m["value"], m["step"]) for m in run["data"]["metrics"]}
    assert latest == {"loss": (1 / 3, 2), "acc": (0.5, 2)}


def test_the_auth_check_guards_the_hot_routes(tmp_path: Path) -> None:
    """The logging routes' fast path skips the session dependency, not the server's auth
    check that the router is included with: a missing or wrong token is refused in MLflow's
    shape, and nothing is logged."""
    from opsloop.app.server import create_app
    from opsloop.config import load_settings

    url, blobs = f"sqlite:///{tmp_path / 'db'}", str(tmp_path / "blobs")
    settings = load_settings(home=str(tmp_path), database_url=url, blob_url=blobs, token="s3cret")
    app = create_app(settings)
    good = {"authorization": "Bearer s3cret"}
    with TestClient(app, raise_server_exceptions=False) as http:
        experiment = http.post(f"{API}/experiments/create", json={"name": "x"}, headers=good)
        created = http.post(
            f"{API}/runs/create", json={"experiment_id": experiment.json()["experiment_id"]},
            headers=good,
        )  # fmt: skip
        run_id = created.json()["run"]["info"]["run_id"]
        point = {"run_id": run_id, "key": "loss", "value": 1.0, "timestamp": 1, "step": 0}
        wrong = {"authorization": "Bearer wrong"}
        for headers, status, code in [
            ({}, 401, "UNAUTHENTICATED"), (wrong, 403, "PERMISSION_DENIED")
        ]:  # fmt: skip
            refused = http.post(f"{API}/runs/log-metric", json=point, headers=headers)
            assert (refused.status_code, refused.json()["error_code"]) == (status, code)
        run = http.get(f"{API}/runs/get", params={"run_id": run_id}, headers=good).json()["run"]
        assert run["data"].get("metrics", []) == []
        assert http.post(f"{API}/runs/log-metric", json=point, headers=good).json() == {}
    app.state.opsloop.store.dispose()


def _answers(app: Any) -> list[tuple[int, Any]]:
    """What ``app`` answers to the hot routes (good, refused, unknown run, the web UI's alias,
    another method, a finished and a deleted run), run ids written as RUN."""
    with TestClient(app, raise_server_exceptions=False) as http:
        experiment = http.post(f"{API}/experiments/create", json={"name": "hot"}).json()
        created = http.post(f"{API}/runs/create", json=experiment).json()
        run_id = created["run"]["info"]["run_id"]
        point = {"run_id": run_id, "key": "loss", "value": 0.5, "timestamp": 7, "step": 1}
        param = {"run_id": run_id, "key": "a", "value": "1"}
        asked = [
            http.post(f"{API}/runs/log-metric", json=point),
            http.post(f"{API}/runs/log-metric", json={**point, "value": "x"}),
            http.post(f"{API}/runs/log-metric", json={**point, "run_id": "0" * 32}),
            http.post("/ajax-api/2.0/mlflow/runs/log-metric", json={**point, "step": 2}),
            http.get(f"{API}/runs/log-metric"),
            http.post(f"{API}/runs/log-parameter", json=param),
            http.post(f"{API}/runs/log-parameter", json={**param, "value": "2"}),  # changed
            http.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "t", "value": "v"}),
            http.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": [point]}),
        ]
        http.post(f"{API}/runs/update", json={"run_id": run_id, "status": "FINISHED"})
        asked.append(http.post(f"{API}/runs/log-metric", json=point))  # finished: still open
        http.post(f"{API}/runs/delete", json={"run_id": run_id})
        asked += [
            http.post(f"{API}/runs/log-metric", json=point),  # deleted: refused
            http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"}),
        ]
    shown = [(a.status_code, a.text.replace(run_id, "RUN")) for a in asked]
    return [(status, json.loads(text) if text else None) for status, text in shown]


def test_the_hot_routes_answer_before_routing_as_the_routes_do(tmp_path: Path) -> None:
    """The server answers the logging routes with a RouteDispatch (no FastAPI routing); the
    same app without it answers the same requests alike, the web UI's alias included."""
    from opsloop.app.server import create_app
    from opsloop.config import load_settings
    from opsloop.web.dispatch import RouteDispatch
    from opsloop.web.mlflow import MLFLOW_API

    def app_in(folder: Path, dispatched: bool) -> Any:
        settings = load_settings(home=str(folder), database_url=f"sqlite:///{folder / 'db'}",
                                 blob_url=str(folder / "blobs"))  # fmt: skip
        app = create_app(settings)
        ours = [m for m in app.user_middleware if m.kwargs.get("prefix") == MLFLOW_API]
        assert [m.cls for m in ours] == [RouteDispatch]
        if not dispatched:
            app.user_middleware.remove(ours[0])
        return app

    dispatched, routed = app_in(tmp_path / "a", True), app_in(tmp_path / "b", False)
    answers = _answers(dispatched)
    assert answers == _answers(routed)
    assert [status for status, _ in answers] == [
        200,
        400,
        404,
        200,
        404,
        200,
        400,
        200,
        200,
        200,
        400,
        200,
    ]
    history = answers[-1][1]["metrics"]
    assert [(p["step"], p["value"]) for p in history] == [(1, 0.5), (2, 0.5)]
    for app in (dispatched, routed):
        app.state.opsloop.store.dispose()
