"""MLflow's scoring protocol on real deployments: every input shape MLflow's clients send (and a
CSV table), class probabilities through ``params.predict_method``, MLflow's error shape for bad
input, traffic policies and the prediction log applying as on opsloop's own ``/predict``, and
``opsloop serve``'s root ``/invocations``, ``/ping``, ``/health`` and ``/version``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import opsloop
from opsloop import Client
from tests.conftest import LiveServer
from tests.serving.conftest import COLUMNS
from tests.serving.conftest import register_two
from tests.serving.conftest import rows


@pytest.fixture(scope="module")
def regressor(cancer: Any) -> Any:
    """A real model without predict_proba: a linear regression on the same columns."""
    from sklearn.linear_model import LinearRegression

    return LinearRegression().fit(cancer[COLUMNS], cancer["target"])


def _deploy_all(client: Client, weak: Any, strong: Any, regressor: Any, cancer: Any) -> None:
    register_two(client, weak, strong, cancer)
    client.deployments.deploy("cancer-clf@1", name="clf")
    client.models.register("cancer-reg", regressor, input_example=cancer[COLUMNS].head())
    client.deployments.deploy("cancer-reg@1", name="reg")


@pytest.fixture
def served(
    sqlite_url: str,
    tmp_path: Path,
    weak_model: Any,
    strong_model: Any,
    regressor: Any,
    cancer: Any,
) -> Iterator[tuple[Client, str]]:
    with LiveServer(sqlite_url, str(tmp_path / "blobs")) as server:
        client = Client(server_url=server.url)
        _deploy_all(client, weak_model, strong_model, regressor, cancer)
        server.app.state.opsloop.serving.policy_ttl = 0.2  # traffic changes show up fast
        yield client, server.url
        client.close()


def _invoke(url: str, body: Any, name: str = "clf", **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/deployments/{name}/invocations", json=body, **kwargs)


def test_every_mlflow_input_shape_answers_like_predict(
    served: tuple[Client, str], cancer: Any, weak_model: Any
) -> None:
    _, url = served
    frame = cancer[COLUMNS].head(3)
    expected = weak_model.predict(frame).tolist()
    split = json.loads(frame.to_json(orient="split"))
    columns = {c: frame[c].tolist() for c in COLUMNS}
    bodies = {
        "dataframe_split": {"dataframe_split": split},
        "dataframe_records": {"dataframe_records": rows(cancer, 3)},
        "instances (records)": {"instances": rows(cancer, 3)},
        "instances (columns)": {"instances": columns},
        "inputs (rows in signature order)": {"inputs": frame.to_numpy().tolist()},
        "inputs (columns)": {"inputs": columns},
    }
    for shape, body in bodies.items():
        answer = _invoke(url, body)
        assert answer.status_code == 200, (shape, answer.text)
        assert answer.json() == {"predictions": expected}, shape  # MLflow's body, nothing else
        assert answer.headers["x-opsloop-model"] == "cancer-clf@1"
        assert len(answer.headers["x-opsloop-request-id"]) == 32

    csv = httpx.post(
        f"{url}/v1/deployments/clf/invocations",
        content=frame.to_csv(index=False).encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert csv.status_code == 200 and csv.json() == {"predictions": expected}
    own = httpx.post(f"{url}/v1/deployments/clf/predict", json={"inputs": columns}).json()
    assert own["predictions"] == expected  # the new shapes reach opsloop's own route too


def test_predict_proba_on_both_routes(
    served: tuple[Client, str], cancer: Any, weak_model: Any
) -> None:
    _, url = served
    frame = cancer[COLUMNS].head(4)
    body = {"dataframe_records": rows(cancer, 4), "params": {"predict_method": "predict_proba"}}
    answer = _invoke(url, body)
    assert answer.status_code == 200, answer.text
    proba = np.asarray(answer.json()["predictions"])
    assert proba.shape == (4, 2)  # one probability per class, in the model's class order
    np.testing.assert_allclose(proba, weak_model.predict_proba(frame), rtol=1e-9)
    own = httpx.post(f"{url}/v1/deployments/clf/predict", json=body).json()
    np.testing.assert_allclose(own["predictions"], proba, rtol=1e-12)
    assert own["model"] == "cancer-clf@1"


def test_bad_input_gets_mlflow_error_shape(served: tuple[Client, str], cancer: Any) -> None:
    _, url = served

    def refused(answer: httpx.Response, status: int, code: str, words: str) -> None:
        assert answer.status_code == status, answer.text
        error = answer.json()
        assert set(error) == {"error_code", "message"} and error["error_code"] == code
        assert words in error["message"], error["message"]

    short_rows = {"inputs": [[1.0, 2.0, 3.0]]}  # three values for a four-column signature
    refused(_invoke(url, short_rows), 400, "BAD_REQUEST", "4 columns")
    refused(_invoke(url, {"dataframe_records": [{"mean radius": 1.0}]}), 400, "BAD_REQUEST",
            "mean texture")  # fmt: skip
    unknown_method = {"instances": rows(cancer), "params": {"predict_method": "predict_log"}}
    refused(_invoke(url, unknown_method), 400, "BAD_REQUEST", "predict_proba")
    refused(_invoke(url, {"instances": rows(cancer), "params": {"temperature": 1}}), 400,
            "BAD_REQUEST", "temperature")  # fmt: skip
    no_proba = {"instances": rows(cancer), "params": {"predict_method": "predict_proba"}}
    refused(_invoke(url, no_proba, name="reg"), 400, "BAD_REQUEST", "no probabilities")
    assert _invoke(url, {"instances": rows(cancer)}, name="reg").status_code == 200
    malformed = httpx.post(f"{url}/v1/deployments/clf/invocations", content=b"{not json",
                           headers={"Content-Type": "application/json"})  # fmt: skip
    refused(malformed, 400, "BAD_REQUEST", "not valid JSON")
    refused(_invoke(url, [rows(cancer)]), 400, "BAD_REQUEST", "JSON object")
    refused(_invoke(url, {"rows": []}), 400, "BAD_REQUEST", "dataframe_split")
    bad_csv = httpx.post(f"{url}/v1/deployments/clf/invocations", content=b"a,b\n1,2\n3,4,5\n",
                         headers={"Content-Type": "text/csv"})  # fmt: skip
    refused(bad_csv, 400, "BAD_REQUEST", "CSV")
    xml = httpx.post(f"{url}/v1/deployments/clf/invocations", content=b"<rows/>",
                     headers={"Content-Type": "application/xml"})  # fmt: skip
    refused(xml, 415, "BAD_REQUEST", "text/csv")
    refused(_invoke(url, {"instances": rows(cancer)}, name="nope"), 404,
            "RESOURCE_DOES_NOT_EXIST", "nope")  # fmt: skip


def test_calls_are_logged_and_follow_the_traffic_policy(
    served: tuple[Client, str], cancer: Any
) -> None:
    client, url = served
    plain = _invoke(url, {"instances": rows(cancer, 2)}, headers={"X-Request-Id": "mlflow-1"})
    proba = _invoke(url, {"inputs": rows(cancer, 1), "params": {"predict_method": "predict_proba"}})
    assert plain.headers["x-opsloop-request-id"] == "mlflow-1"
    fed = httpx.post(f"{url}/v1/deployments/clf/feedback", json={"request_id": "mlflow-1",
                                                                 "label": 1})  # fmt: skip
    assert fed.json() == {"accepted": 1}

    client.deployments.deploy("cancer-clf@2", name="clf", canary=100)
    time.sleep(0.3)  # past the runtime's policy TTL
    canary = _invoke(url, {"dataframe_records": rows(cancer, 1)})
    assert canary.headers["x-opsloop-model"] == "cancer-clf@2"

    logged = client.deployments.predictions("clf").set_index("request_id")
    proba_id, canary_id = (r.headers["x-opsloop-request-id"] for r in (proba, canary))
    assert {"mlflow-1", proba_id, canary_id} <= set(logged.index)
    assert logged.loc["mlflow-1", "label"] == "1"
    answered = logged.loc[proba_id]
    assert json.loads(answered["outputs"]) in ([0], [1])  # the log keeps the label...
    assert json.loads(answered["proba"]) == pytest.approx(  # ...and the positive class's score
        [proba.json()["predictions"][0][1]]
    )
    assert int(logged.loc[canary_id, "version"]) == 2


def test_serve_app_answers_root_invocations_and_probes(
    weak_model: Any, strong_model: Any, regressor: Any, cancer: Any
) -> None:
    from fastapi.testclient import TestClient

    from opsloop.app.serving import create_serving_app
    from opsloop.config import load_settings

    client = opsloop.Client()  # the test's embedded store under OPSLOOP_HOME
    register_two(client, weak_model, strong_model, cancer)
    client.deployments.deploy("cancer-clf@2", name="clf")
    body = {"dataframe_records": rows(cancer, 2)}
    expected = strong_model.predict(cancer[COLUMNS].head(2)).tolist()

    with TestClient(create_serving_app(load_settings())) as http:
        assert http.get("/ping").status_code == 200 and http.get("/health").status_code == 200
        assert http.get("/version").text == opsloop.__version__
        only = http.post("/invocations", json=body)  # the only deployment there is
        assert only.json() == {"predictions": expected}

    client.models.register("cancer-reg", regressor, input_example=cancer[COLUMNS].head())
    client.deployments.deploy("cancer-reg@1", name="reg")
    with TestClient(create_serving_app(load_settings())) as http:
        ambiguous = http.post("/invocations", json=body)
        assert ambiguous.status_code == 404
        assert "--deployment" in ambiguous.json()["message"]
    with TestClient(create_serving_app(load_settings(), deployment="clf")) as http:
        assert http.post("/invocations", json=body).json() == {"predictions": expected}
    logged = client.deployments.predictions("clf")
    assert len(logged) == 2  # both answered calls, logged like any prediction
    client.close()
