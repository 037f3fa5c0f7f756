"""The OpenAPI document tells the truth: every status the server answers to a request that
fails validation, names an unknown thing, lacks a token or sends too much is documented on the
route it was sent to, no route documents FastAPI's 422 that the server never sends, and the
``Error`` component validates the error bodies the server really sends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from tests.conftest import LiveServer

_UNKNOWN_ID = "0" * 32
_INFERENCE = {"/v1/deployments/{name}/predict", "/v1/deployments/{name}/feedback"}
# MLflow's scoring protocol answers its errors in MLflow's shape (see test_invocations.py)
_MLFLOW_SHAPED = {"/v1/deployments/{name}/invocations"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("openapi")
    with LiveServer(f"sqlite:///{root / 'opsloop.db'}", str(root / "blobs")) as live:
        yield live


@pytest.fixture(scope="module")
def document(server: LiveServer) -> dict[str, Any]:
    # built on the first request: seconds on a loaded 2-core box, past httpx's 5 s default
    return httpx.get(f"{server.url}/openapi.json", timeout=60).json()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def _check(document: dict[str, Any], method: str, template: str, answer: httpx.Response) -> None:
    """``answer`` is documented on ``method template`` and its body is an ``Error``."""
    documented = document["paths"][template][method.lower()]["responses"]
    assert str(answer.status_code) in documented, (method, template, answer.status_code)
    schema = {**document["components"]["schemas"]["Error"], "$defs": {}}
    jsonschema.validate(answer.json(), schema)
    assert answer.json()["error"]["code"]


def _fill(template: str, value: Any) -> str:
    return re.sub(r"\{([^}:]+)(:path)?\}", lambda m: value(m.group(1)), template)


def _unknown(param: str) -> str:
    return _UNKNOWN_ID if param.endswith("_id") else "no-such-thing"


def test_no_route_documents_a_422_the_server_does_not_send(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    with_422 = {path for _, path, op in _operations(document) if "422" in op["responses"]}
    assert with_422 == _INFERENCE  # they answer a payload that does not fit with 422 (tested
    # in tests/serving/test_inference.py)
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                ref = response["content"]["application/json"]["schema"]["$ref"]
                if ref == "#/components/schemas/MlflowError":
                    assert path in _MLFLOW_SHAPED, (method, path, status)
                    continue
                assert ref == "#/components/schemas/Error", (method, path, status)
        if operation.get("parameters") or operation.get("requestBody"):
            assert "400" in operation["responses"] or path in _INFERENCE, (method, path)


def test_validation_failures_are_documented_400s(
    server: LiveServer, document: dict[str, Any]
) -> None:
    tried = 0
    for method, path, operation in _operations(document):
        names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        if method == "GET" and "max_results" in names and "{" not in path:
            answer = httpx.get(f"{server.url}{path}", params={"max_results": 0})
        elif method == "POST" and "{" not in path and _required_body(document, operation):
            answer = httpx.post(f"{server.url}{path}", json={})
        else:
            continue
        assert answer.status_code == 400, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "INVALID_INPUT"
        _check(document, method, path, answer)
        tried += 1
    assert tried >= 15
    bad_id = httpx.get(f"{server.url}/api/runs/xyz")
    assert bad_id.status_code == 400
    _check(document, "GET", "/api/runs/{run_id}", bad_id)


def _required_body(document: dict[str, Any], operation: dict[str, Any]) -> bool:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if not content:
        return False
    schema = content["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return bool(schema.get("required"))


def test_unknown_names_and_ids_are_documented_404s(
    server: LiveServer, document: dict[str, Any]
) -> None:
    tried = 0
    for method, path, _ in _operations(document):
        if method != "GET" or path.count("{") != 1 or not path.endswith("}"):
            continue
        if "/blobs/" in path:
            continue  # a blob is named by its digest: tested below
        answer = httpx.get(server.url + _fill(path, _unknown))
        assert answer.status_code == 404, (path, answer.status_code, answer.text)
        _check(document, method, path, answer)
        tried += 1
    assert tried >= 12
    missing_blob = httpx.get(f"{server.url}/api/blobs/{'0' * 64}")
    assert missing_blob.status_code == 404
    _check(document, "GET", "/api/blobs/{digest}", missing_blob)
    predict = "/v1/deployments/{name}/predict"
    answer = httpx.post(server.url + _fill(predict, _unknown), json={"records": []})
    assert answer.status_code == 404
    _check(document, "POST", predict, answer)


def test_conflicts_and_too_large_bodies_are_documented(
    server: LiveServer, document: dict[str, Any]
) -> None:
    name = {"name": "openapi-conflict"}
    assert httpx.post(f"{server.url}/api/experiments", json=name).status_code == 201
    duplicate = httpx.post(f"{server.url}/api/experiments", json=name)
    assert duplicate.status_code == 409
    _check(document, "POST", "/api/experiments", duplicate)
    huge = b"x" * (17 << 20)  # over every JSON route's limit
    too_large = httpx.post(
        f"{server.url}/api/experiments", content=huge, headers={"content-type": "application/json"}
    )
    assert too_large.status_code == 413
    _check(document, "POST", "/api/experiments", too_large)


def test_token_errors_are_documented(sqlite_url: str, tmp_path: Path) -> None:
    with LiveServer(sqlite_url, str(tmp_path / "b"), token="s3cret") as server:
        document = httpx.get(f"{server.url}/openapi.json", timeout=60).json()
        for path in ("/api/experiments", "/api/models", "/api/deployments", "/api/traces"):
            missing = httpx.get(f"{server.url}{path}")
            assert missing.status_code == 401
            _check(document, "GET", path, missing)
            wrong = httpx.get(f"{server.url}{path}", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 403
            _check(document, "GET", path, wrong)
        assert "401" not in document["paths"]["/healthz"]["get"]["responses"]
