"""Users mode over HTTP, on SQLite and PostgreSQL: keys (401s), roles (403s naming the role),
grants, keys shown once, and the principal as the author of what it writes."""

from __future__ import annotations

import sqlalchemy as sa

from opsloop import Client
from opsloop.errors import PermissionDenied
from opsloop.errors import Unauthenticated
from tests.governance.conftest import UsersServer


def _error(response) -> dict:  # type: ignore[no-untyped-def]
    return response.json()["error"]


def test_whoami_names_each_user_and_role(users_server: UsersServer) -> None:
    for user, role in [("root", "admin"), ("mona", "maintainer"), ("eddie", "editor"),
                       ("vic", "viewer")]:  # fmt: skip
        with users_server.http(user) as http:
            me = http.get("/api/whoami").json()
        assert (me["name"], me["role"], me["auth"], me["workspace"]) == (
            user, role, "users", "default"
        )  # fmt: skip


def test_missing_wrong_expired_and_revoked_keys_are_401(users_server: UsersServer) -> None:
    with users_server.http() as http:
        assert http.get("/api/experiments").status_code == 401
    for wrong in ("opsk_" + "A" * 43, "not-a-key", users_server.keys["vic"] + "x"):
        with users_server.http(key=wrong) as http:
            answer = http.get("/api/experiments")
        assert answer.status_code == 401
        assert "unknown, expired or revoked" in _error(answer)["message"]

    with users_server.http("root") as admin:
        made = admin.post("/api/keys", json={"user": "vic", "name": "soon", "expires_in_s": 60})
        assert made.status_code == 201
        expiring = made.json()["secret"]
        engine = sa.create_engine(users_server.database_url)  # let its minute pass
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE api_keys SET expires_at = 1 WHERE name = 'soon'"))
        engine.dispose()
        with users_server.http(key=expiring) as http:
            assert http.get("/api/whoami").status_code == 401

        # revoked: refused from the very next request, though it was just used (and cached)
        with users_server.http("eddie") as http:
            assert http.get("/api/whoami").status_code == 200
            key_id = next(k["id"] for k in http.get("/api/keys").json())
            assert admin.delete(f"/api/keys/{key_id}").json()["revoked_at"] is not None
            answer = http.get("/api/whoami")
        assert answer.status_code == 401


def test_a_role_too_low_is_403_naming_the_role(users_server: UsersServer) -> None:
    with users_server.http("vic") as viewer:
        assert viewer.get("/api/experiments").status_code == 200
        assert viewer.post("/api/runs/search", json={"experiment_ids": []}).status_code != 403
        denied = viewer.post("/api/experiments", json={"name": "x"})
    assert denied.status_code == 403
    error = _error(denied)
    assert error["details"]["required_role"] == "editor"
    assert "'editor'" in error["message"] and "vic is 'viewer'" in error["message"]

    with users_server.http("eddie") as editor:
        assert editor.post("/api/experiments", json={"name": "x"}).status_code == 201
        champion = editor.put("/api/models/m/aliases/champion", json={"version": 1})
        staging = editor.put("/api/models/m/aliases/staging", json={"version": 1})
        labelled = editor.post(
            "/api/prompts/p/versions", json={"text": "hi", "labels": ["production"]}
        )
        runs_code = editor.post("/api/pipelines/runs", json={"target": "x.py:flow"})
        deploys = editor.post("/api/deployments", json={"name": "d", "model": "m@1"})
    for answer in (champion, labelled, runs_code, deploys):
        assert answer.status_code == 403, answer.text
        assert _error(answer)["details"]["required_role"] == "maintainer"
    assert "protected alias 'champion'" in _error(champion)["message"]
    assert staging.status_code == 404  # past the role check: the model does not exist

    with users_server.http("mona") as maintainer:
        assert maintainer.put("/api/models/m/aliases/champion",
                              json={"version": 1}).status_code == 404  # fmt: skip
        denied = maintainer.post("/api/users", json={"name": "x", "role": "viewer"})
    assert denied.status_code == 403 and _error(denied)["details"]["required_role"] == "admin"


def test_grants_never_exceed_the_granters_role(users_server: UsersServer) -> None:
    with users_server.http("eddie") as editor:
        above = editor.post("/api/keys", json={"name": "ci", "role": "maintainer"})
        others = editor.post("/api/keys", json={"name": "ci", "user": "vic"})
        capped = editor.post("/api/keys", json={"name": "ci", "role": "viewer"})
    assert above.status_code == 403
    assert "above its user's own" in _error(above)["message"]
    assert others.status_code == 403 and _error(others)["details"]["required_role"] == "admin"
    assert capped.status_code == 201
    with users_server.http(key=capped.json()["secret"]) as narrowed:
        assert narrowed.get("/api/whoami").json()["role"] == "viewer"
        assert narrowed.post("/api/experiments", json={"name": "y"}).status_code == 403

    with users_server.http("root") as admin:
        unknown = admin.post("/api/users", json={"name": "zed", "role": "owner"})
        bad_name = admin.post("/api/users", json={"name": "../x", "role": "viewer"})
        made = admin.post("/api/users", json={"name": "ci-bot", "role": "editor", "service": True})
        again = admin.post("/api/users", json={"name": "ci-bot", "role": "editor"})
        last = admin.put("/api/users/root/role", json={"role": "viewer"})
    assert unknown.status_code == 400 and "unknown role 'owner'" in _error(unknown)["message"]
    assert bad_name.status_code == 400
    assert made.status_code == 201 and made.json()["is_service"] is True
    assert again.status_code == 409
    assert last.status_code == 403 and "last admin" in _error(last)["message"]


def test_a_key_is_shown_once_and_listed_by_prefix(users_server: UsersServer) -> None:
    with users_server.http("root") as admin:
        made = admin.post("/api/keys", json={"user": "vic", "name": "laptop"}).json()
        secret = made["secret"]
        listing = admin.get("/api/keys", params={"user": "*"})
        mine = admin.get("/api/keys").json()
    assert secret.startswith("opsk_") and len(secret) == 48
    assert secret not in listing.text and "secret" not in listing.text
    assert made["key"]["prefix"] == secret[:12]
    assert any(k["prefix"] == secret[:12] for k in listing.json())
    assert all(k["user"] == "root" for k in mine)
    engine = sa.create_engine(users_server.database_url)
    with engine.connect() as conn:
        stored = [tuple(map(str, row)) for row in conn.execute(sa.text("SELECT * FROM api_keys"))]
    engine.dispose()
    assert stored and not any(secret in value for row in stored for value in row)


def test_the_principal_is_the_author_whatever_the_client_claims(
    users_server: UsersServer,
) -> None:
    with Client(server_url=users_server.url, token=users_server.keys["eddie"]) as sdk:
        experiment = sdk.set_experiment("authored")
        run = sdk.create_run(experiment.experiment_id, capture_env=False)
        assert run.info.user_id == "eddie"
        prompt = sdk.prompts.create("greeting", text="hello")
        assert prompt.created_by == "eddie"
    with users_server.http("eddie") as http:
        claimed = http.post("/api/runs", json={"experiment_id": experiment.experiment_id,
                                               "user_id": "mallory"})  # fmt: skip
    assert claimed.status_code == 201 and claimed.json()["info"]["user_id"] == "eddie"


def test_the_sdk_over_http_gets_the_same_errors(users_server: UsersServer) -> None:
    with Client(server_url=users_server.url, token=users_server.keys["vic"]) as viewer:
        assert viewer.governance.whoami().role == "viewer"
        try:
            viewer.set_experiment("nope")
        except PermissionDenied as exc:
            assert exc.details["required_role"] == "editor"
        else:
            raise AssertionError("a viewer created an experiment")
    with Client(server_url=users_server.url, token="opsk_" + "B" * 43) as stranger:
        try:
            stranger.governance.whoami()
        except Unauthenticated:
            pass
        else:
            raise AssertionError("an unknown key was accepted")


def test_metrics_needs_a_key_in_users_mode(users_server: UsersServer) -> None:
    with users_server.http() as anonymous:
        assert anonymous.get("/metrics").status_code == 401
    with users_server.http("vic") as viewer:
        assert viewer.get("/metrics").status_code == 200
