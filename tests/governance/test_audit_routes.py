"""Every state-changing route writes one audit event, once, in one place (the server's audit
middleware): a walk over the whole app drives each POST, PUT, PATCH and DELETE route with a
request that gets past auth (an admin's key) and checks the event it left, whatever the route
answered (a 4xx from validation is recorded with its status)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from opsloop.governance.audit_hook import READ_ONLY_POSTS
from opsloop.governance.audit_hook import resource_of
from tests.governance.conftest import bootstrap

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, TestClient]]:
    from opsloop.app.server import create_app
    from opsloop.config import load_settings

    home = tmp_path_factory.mktemp("audit-walk")
    url, blobs = f"sqlite:///{home / 'db'}", str(home / "blobs")
    keys = bootstrap(url, blobs)
    settings = load_settings(home=str(home), database_url=url, blob_url=blobs, auth="users")
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {keys['root']}"}
    # a 500 is an answer to audit like any other: the client sees it instead of raising
    with TestClient(
        app, headers=headers, raise_server_exceptions=False, follow_redirects=False
    ) as client:
        client.keys = keys  # type: ignore[attr-defined]
        yield app, client
    app.state.opsloop.store.dispose()


def _mutating_routes(app: FastAPI) -> list[tuple[str, str]]:
    found = set()
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            for method in context.methods & WRITES:
                found.add((method, str(context.path_format)))
    return sorted(found)


def _events(client: TestClient) -> list[dict]:
    page = client.get("/api/audit", params={"max_results": 10_000})
    assert page.status_code == 200, page.text
    return page.json()["items"]


def test_every_mutating_route_writes_one_event(admin: tuple[FastAPI, TestClient]) -> None:
    app, client = admin
    routes = _mutating_routes(app)
    assert len(routes) > 60  # the walk saw the whole app: REST, protocol and page routes
    silent, walked, outcomes = [], 0, {}
    for method, template in routes:
        params = {name: "1" for name in _names(template)}
        path = resource_of(template, params)
        path = "/" + path if template.startswith("/api/") is False else "/api/" + path
        body = b"{}"
        before = _events(client)[0]["seq"] if _events(client) else 0
        answer = client.request(method, path, content=body,
                                headers={"content-type": "application/json"})  # fmt: skip
        events = [e for e in _events(client) if e["seq"] > before]
        if (method, template) in READ_ONLY_POSTS:
            assert events == [], f"{method} {template} only reads, yet wrote {events}"
            continue
        walked += 1
        mine = [e for e in events if e["request_id"] == answer.headers["x-request-id"]]
        if len(mine) != 1:
            silent.append(f"{method} {template} -> {answer.status_code}: {len(mine)} events")
            continue
        event = mine[0]
        outcomes[answer.status_code] = outcomes.get(answer.status_code, 0) + 1
        assert event["action"] == f"{method} {template}"
        assert event["resource"] == resource_of(template, params)
        assert event["outcome"] == answer.status_code, (method, template, answer.text[:200])
        assert event["actor"] in {"root", "anonymous"}  # anonymous: /login, /logout
    assert silent == [], "routes that wrote no (or several) events:\n" + "\n".join(silent)
    assert walked > 60
    print(f"walked {walked} mutating routes; outcomes {sorted(outcomes.items())}")
    verdict = client.get("/api/audit/verify").json()
    assert verdict["ok"], verdict


def test_event_names_the_user_the_body_digest_and_a_failed_write(
    admin: tuple[FastAPI, TestClient],
) -> None:
    _, client = admin
    body = json.dumps({"name": "audited-exp"}).encode()
    created = client.post("/api/experiments", content=body,
                          headers={"content-type": "application/json"})  # fmt: skip
    assert created.status_code == 201
    again = client.post("/api/experiments", content=body,
                        headers={"content-type": "application/json"})  # fmt: skip
    assert again.status_code == 409
    events = {e["request_id"]: e for e in _events(client)}
    first, second = events[created.headers["x-request-id"]], events[again.headers["x-request-id"]]
    assert (first["actor"], first["outcome"]) == ("root", 201)
    assert (second["actor"], second["outcome"]) == ("root", 409)
    assert first["digest"] == second["digest"] == hashlib.sha256(body).hexdigest()
    assert second["seq"] == first["seq"] + 1 and second["prev_hash"] == first["hash"]


def _names(template: str) -> list[str]:
    import re

    return re.findall(r"\{(\w+)(?::\w+)?\}", template)


def test_reads_get_a_request_id_and_no_event(admin: tuple[FastAPI, TestClient]) -> None:
    _, client = admin
    before = len(_events(client))
    answer = client.get("/api/experiments")
    assert len(answer.headers["x-request-id"]) == 32
    assert len(_events(client)) == before


def test_the_audit_page_is_an_admins(admin: tuple[FastAPI, TestClient]) -> None:
    _, client = admin
    client.post("/api/experiments", json={"name": "seen-on-the-page"})
    page = client.get("/audit", params={"actor": "root", "since": "1h"})
    assert page.status_code == 200
    assert 'href="/audit"' in page.text and "Chain intact" in page.text
    assert "POST /api/experiments" in page.text
    bad = client.get("/audit", params={"since": "yesterday"})
    assert bad.status_code == 200 and "since takes a duration" in bad.text
    editor = {"Authorization": f"Bearer {client.keys['eddie']}"}  # type: ignore[attr-defined]
    assert 'href="/audit"' not in client.get("/experiments", headers=editor).text
    assert client.get("/audit", headers=editor).status_code == 403
    assert client.get("/api/audit", headers=editor).status_code == 403


def test_a_logged_mlflow_point_commits_its_event_with_it(
    admin: tuple[FastAPI, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's logging routes write a run named by its full id in a plain transaction
    (``Store.write_plain``), others through a session: each request leaves one event either
    way, with the status it answered, committed with the write when there was one (not
    appended on its own after the answer's status), and the chain still verifies."""
    from opsloop.governance.audit_hook import AuditMiddleware

    _, client = admin
    alone: list[str] = []  # events appended in a transaction of their own
    append_alone = AuditMiddleware._append
    monkeypatch.setattr(AuditMiddleware, "_append", lambda self, store, fields: (
        alone.append(fields["request_id"]), append_alone(self, store, fields)))  # fmt: skip
    api = "/api/2.0/mlflow"
    experiment = client.post(f"{api}/experiments/create", json={"name": "plain-audit"}).json()
    run_id = client.post(f"{api}/runs/create", json=experiment).json()["run"]["info"]["run_id"]
    point = {"key": "loss", "value": 0.5, "timestamp": 1, "step": 1}
    sent = [
        (client.post(f"{api}/runs/log-metric", json={"run_id": run_id, **point}), 200),  # plain
        (client.post(f"{api}/runs/log-metric", json={"run_id": run_id[:8], **point}), 200),
        (client.post(f"{api}/runs/set-tag",  # a rename goes through the session
                     json={"run_id": run_id, "key": "mlflow.runName", "value": "renamed"}), 200),
        (client.post(f"{api}/runs/log-parameter",
                     json={"run_id": run_id, "key": "lr", "value": "0.1"}), 200),
        (client.post(f"{api}/runs/log-parameter",  # immutable: refused, nothing written
                     json={"run_id": run_id, "key": "lr", "value": "0.2"}), 400),
        (client.post(f"{api}/runs/log-metric", json={"run_id": "f" * 32, **point}), 404),
    ]  # fmt: skip
    events = {e["request_id"]: e for e in _events(client)}
    for answer, status in sent:
        assert answer.status_code == status, answer.text
        event = events[answer.headers["x-request-id"]]
        assert (event["outcome"], event["actor"]) == (status, "root")
        assert event["action"].startswith(f"POST {api}/runs/")
        assert (event["request_id"] in alone) == (status != 200), (answer.request.content, alone)
    run = client.get(f"{api}/runs/get", params={"run_id": run_id}).json()["run"]
    assert run["info"]["run_name"] == "renamed"
    assert run["data"]["params"] == [{"key": "lr", "value": "0.1"}]
    verdict = client.get("/api/audit/verify").json()
    assert verdict["ok"], verdict
