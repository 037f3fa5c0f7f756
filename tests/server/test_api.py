"""The REST API over real HTTP: status codes, error bodies, auth, and the SDK's routes."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import httpx
import pytest

from opsloop import Client
from opsloop import PermissionDenied
from opsloop import Unauthenticated
from tests.conftest import LiveServer


@pytest.fixture
def http(live_server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=live_server.url)


def test_health_and_docs(http: httpx.Client) -> None:
    assert http.get("/healthz").json()["status"] == "ok"
    assert http.get("/docs").status_code == 200
    assert "/api/runs/search" in http.get("/openapi.json", timeout=60).json()["paths"]


def test_errors_have_status_and_one_shape(http: httpx.Client) -> None:
    created = http.post("/api/experiments", json={"name": "e"})
    assert created.status_code == 201
    dup = http.post("/api/experiments", json={"name": "e"})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "CONFLICT"
    assert http.get(f"/api/runs/{'0' * 32}").status_code == 404
    assert http.get("/api/runs/xyz").status_code == 400
    bad_json = http.post(
        "/api/experiments", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "INVALID_INPUT"
    missing_field = http.post("/api/experiments", json={})
    assert missing_field.status_code == 400 and "name" in missing_field.json()["error"]["message"]
    exp_id = created.json()["experiment_id"]
    run = http.post("/api/runs", json={"experiment_id": exp_id}).json()
    run_id = run["info"]["run_id"]
    nan = http.post(
        f"/api/runs/{run_id}/batch",
        content=b'{"metrics": {"series": {"m": {"values": [NaN], "steps": [0], '
        b'"timestamps": [0]}}}}',
        headers={"content-type": "application/json"},
    )
    assert nan.status_code == 400
    bad_filter = http.post(
        "/api/runs/search", json={"experiment_ids": [exp_id], "filter": "metrics.a >"}
    )
    assert bad_filter.status_code == 400 and bad_filter.json()["error"]["details"]["column"] == 12
    assert http.get(f"/api/runs/{run_id}").json()["data"]["metrics"] == {}


def test_blob_upload_is_checked(http: httpx.Client) -> None:
    from blake3 import blake3

    digest = blake3(b"abc").hexdigest()
    assert http.put(f"/api/blobs/{digest}", content=b"abd").status_code == 400
    assert http.post("/api/blobs/missing", json={"digests": [digest]}).json()["digests"] == [digest]
    assert http.put(f"/api/blobs/{digest}", content=b"abc").status_code == 201
    assert http.get(f"/api/blobs/{digest}").content == b"abc"
    assert http.put("/api/blobs/..%2F..%2Fetc", content=b"x").status_code in (400, 404)


def test_token_auth(sqlite_url: str, tmp_path: Path) -> None:
    with LiveServer(sqlite_url, str(tmp_path / "b"), token="s3cret") as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        assert httpx.get(f"{server.url}/api/experiments").status_code == 401
        wrong = httpx.get(f"{server.url}/api/experiments", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        with pytest.raises(Unauthenticated):
            Client(server_url=server.url).list_experiments()
        with pytest.raises(PermissionDenied):
            Client(server_url=server.url, token="nope").list_experiments()
        ok = Client(server_url=server.url, token="s3cret")
        assert ok.create_experiment("x").name == "x"


def test_every_route_the_sdk_calls_exists_in_openapi(http: httpx.Client) -> None:
    """A route renamed on the server without the SDK (or the other way round) fails here."""
    from opsloop.data import remote as data_http
    from opsloop.registry import remote as registry_http
    from opsloop.tracking import remote as http_backend

    spec = http.get("/openapi.json", timeout=60).json()["paths"]
    patterns = [
        (
            re.compile(
                "^"
                + re.sub(
                    r"\{[^}]+\}",
                    "[^/]+",
                    path.replace("{key:path}", "{key}").replace("{name:path}", "{name}"),
                )
                + "$"
            ),
            set(methods),
        )
        for path, methods in spec.items()
    ]
    modules = (http_backend, data_http, registry_http)
    source = "".join(inspect.getsource(m) for m in modules)
    calls = re.findall(r'"(GET|POST|PUT|PATCH|DELETE)",\s*f?"(/api/[^"]*)"', source)
    for module in modules:  # requests written as ``routes.X.url(...)``: the Route's path
        used = r'"(GET|POST|PUT|PATCH|DELETE)",\s*routes\.(\w+)\.url\('
        for method, name in re.findall(used, inspect.getsource(module)):
            route = getattr(module.routes, name)
            calls.append((method, route.mount + route.template))
    calls = [(m, re.sub(r"\{[^}]*\}", "{x}", p)) for m, p in calls]
    calls += [
        ("POST", p + "/restore")
        for m, p in calls
        if m == "DELETE" and p.count("/") == 3 and not p.startswith("/api/models")
    ]
    assert len(calls) >= 30
    for method, path in calls:
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        assert any(p.match(concrete) and method.lower() in methods for p, methods in patterns), (
            method,
            path,
        )


def test_a_write_is_visible_to_the_next_request(http: httpx.Client) -> None:
    """The route's transaction commits before the response goes out (no read-after-write race)."""
    exp_id = http.post("/api/experiments", json={"name": "raw"}).json()["experiment_id"]
    for _ in range(40):
        run_id = http.post("/api/runs", json={"experiment_id": exp_id}).json()["info"]["run_id"]
        assert http.get(f"/api/runs/{run_id}").status_code == 200
