"""Disabling and enabling users (issue 23): a disabled user's keys and web sessions stop at the
next request, the last enabled admin cannot be disabled, only an admin may do either, each
change is in the audit log; over HTTP on SQLite and PostgreSQL, and the CLI on the store."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import opsloop
from tests.governance.conftest import UsersServer

OPSLOOP = str(Path(sys.executable).with_name("opsloop"))


def test_a_disabled_users_keys_and_sessions_stop_at_once(users_server: UsersServer) -> None:
    with users_server.http("eddie") as eddie, users_server.http("root") as root:
        browser = users_server.http()
        form = re.search(r'name="csrf_token" value="([^"]*)"', browser.get("/login").text)
        assert form is not None
        fields = {"token": users_server.keys["eddie"], "next": "/", "csrf_token": form.group(1)}
        signed = browser.post("/login", headers={"origin": users_server.url}, data=fields)
        assert signed.status_code == 303, signed.text
        assert eddie.get("/api/whoami").json()["name"] == "eddie"
        assert browser.get("/api/whoami").json()["name"] == "eddie"

        off = root.post("/api/users/eddie/disable")
        assert off.status_code == 200 and off.json()["disabled_at"] is not None
        assert eddie.get("/api/whoami").status_code == 401  # no waiting for the cache
        assert browser.get("/api/whoami").status_code == 401
        again = root.post("/api/users/eddie/disable")  # twice: no error, same time
        assert again.json()["disabled_at"] == off.json()["disabled_at"]
        listed = {u["name"]: u["disabled_at"] for u in root.get("/api/users").json()}
        assert listed["eddie"] is not None and listed["mona"] is None

        on = root.post("/api/users/eddie/enable")
        assert on.status_code == 200 and on.json()["disabled_at"] is None
        assert eddie.get("/api/whoami").json()["role"] == "editor"  # the same key works again

        events = root.get("/api/audit", params={"resource": "users/eddie"}).json()["items"]
        actions = [(e["actor"], e["action"], e["outcome"]) for e in events]
        assert ("root", "POST /api/users/{name}/disable", 200) in actions
        assert ("root", "POST /api/users/{name}/enable", 200) in actions
        browser.close()


def test_who_may_disable_and_the_last_admin(users_server: UsersServer) -> None:
    with users_server.http("mona") as mona, users_server.http("root") as root:
        denied = mona.post("/api/users/eddie/disable")
        assert denied.status_code == 403 and "'admin'" in denied.json()["error"]["message"]
        last = root.post("/api/users/root/disable")
        assert last.status_code == 409
        assert last.json()["error"]["message"] == (
            "root is the last enabled admin: make another user admin first"
        )
        typo = root.post("/api/users/edie/disable")
        assert (
            typo.status_code == 404 and "did you mean 'eddie'?" in typo.json()["error"]["message"]
        )

        assert root.put("/api/users/mona/role", json={"role": "admin"}).status_code == 200
        assert root.post("/api/users/mona/disable").status_code == 200
        # a disabled admin manages nothing: root is still the last one who can
        demoted = root.put("/api/users/root/role", json={"role": "viewer"})
        assert demoted.status_code == 403 and "last admin" in demoted.json()["error"]["message"]
        assert root.post("/api/users/root/disable").status_code == 409
        assert mona.get("/api/whoami").status_code == 401


def test_sdk_over_http(users_server: UsersServer) -> None:
    with opsloop.Client(server_url=users_server.url, token=users_server.keys["root"]) as root:
        assert root.governance.disable_user("vic").disabled_at is not None
        assert {u.name for u in root.governance.list_users() if u.disabled_at} == {"vic"}
        assert root.governance.enable_user("vic").disabled_at is None


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPSLOOP, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )


def test_cli_on_the_store(sqlite_url: str, tmp_path: Path) -> None:
    store = {"OPSLOOP_DATABASE_URL": sqlite_url, "OPSLOOP_BLOB_URL": str(tmp_path / "b")}
    assert run("users", "create", "admin", "--role", "admin", **store).returncode == 0
    assert run("users", "create", "alice", "--role", "editor", **store).returncode == 0
    off = run("users", "disable", "alice", **store)
    assert off.returncode == 0, off.stderr
    assert off.stdout.strip() == "alice is disabled: its keys and sessions are refused"
    listed = run("users", "list", **store).stdout
    assert "disabled" in listed and "active" in listed
    as_json = run("users", "list", "--json", **store).stdout
    assert '"disabled_at": null' in as_json and as_json.count('"disabled_at": null') == 1
    on = run("users", "enable", "alice", "--json", **store)
    assert on.returncode == 0 and '"disabled_at": null' in on.stdout
    audit = json.loads(run("audit", "list", "--resource", "users/alice", "--json", **store).stdout)
    assert [e["resource"] for e in audit] == ["users/alice/enable", "users/alice/disable"]

    for args, code, message in [
        (["users", "disable", "alise"], 3, "did you mean 'alice'?"),
        (["users", "enable", "nobody-like-that"], 3, "user 'nobody-like-that' does not exist"),
        (["users", "disable", "admin"], 4, "admin is the last enabled admin"),
    ]:
        failed = run(*args, **store)
        assert failed.returncode == code, (args, failed.stderr)
        assert failed.stderr.count("\n") == 1 and message in failed.stderr
        assert "Traceback" not in failed.stderr
