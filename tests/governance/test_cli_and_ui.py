"""``opsloop users|keys|whoami`` as an operator runs them (real processes), the web UI's sign-in
with an API key, and ``whoami`` on a token server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer
from tests.governance.conftest import ALLOWED_CODE
from tests.governance.conftest import UsersServer
from tests.governance.conftest import bootstrap

OPSLOOP = str(Path(sys.executable).with_name("opsloop"))


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPSLOOP, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )


@pytest.fixture
def sqlite_users_server(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[UsersServer]:
    monkeypatch.setenv("OPSLOOP_AUTH", "users")
    monkeypatch.setenv("OPSLOOP_ALLOW_CODE", ALLOWED_CODE)
    blobs = str(tmp_path / "server-blobs")
    keys = bootstrap(sqlite_url, blobs)
    with LiveServer(sqlite_url, blobs) as server:
        yield UsersServer(server, sqlite_url, keys)


def test_bootstrap_on_the_store_then_work_over_http(sqlite_url: str, tmp_path: Path) -> None:
    store = {"OPSLOOP_DATABASE_URL": sqlite_url, "OPSLOOP_BLOB_URL": str(tmp_path / "b")}
    made = run("users", "create", "admin", "--role", "admin", **store)
    assert made.returncode == 0 and made.stdout.strip() == "created user admin (admin)"
    bot = run("users", "create", "ci-bot", "--role", "editor", "--service", **store)
    assert "service account ci-bot (editor)" in bot.stdout
    key = run("keys", "create", "--user", "ci-bot", "--name", "github", "--expires", "30d",
              **store)  # fmt: skip
    secret = key.stdout.strip()
    assert key.returncode == 0 and re.fullmatch(r"opsk_[A-Za-z0-9_-]{43}", secret)
    assert "shown once" in key.stderr and "expires" in key.stderr
    listed = run("keys", "list", "--json", **store)
    assert secret not in listed.stdout and secret[:12] in listed.stdout
    users = run("users", "list", **store).stdout
    assert "ci-bot" in users and "service" in users and "editor" in users

    for args, code, message in [
        (["users", "create", "x", "--role", "owner"], 2, "unknown role 'owner'"),
        (["users", "create", "a b"], 2, "invalid user name"),
        (["keys", "create", "--user", "ci-bot", "--name", "x", "--expires", "3 days"], 2,
         "--expires takes"),
        (["keys", "create", "--user", "nobody", "--name", "x"], 3, "user 'nobody'"),
        (["keys", "revoke", "opsk_nothing"], 3, "no API key"),
    ]:  # fmt: skip
        failed = run(*args, **store)
        assert failed.returncode == code, (args, failed.stderr)
        assert failed.stderr.count("\n") == 1 and message in failed.stderr
        assert "Traceback" not in failed.stderr


def test_whoami_and_keys_over_http(sqlite_users_server: UsersServer) -> None:
    server = {"OPSLOOP_SERVER_URL": sqlite_users_server.url}
    me = run("whoami", OPSLOOP_TOKEN=sqlite_users_server.keys["eddie"], **server)
    assert me.returncode == 0
    assert me.stdout.strip() == (
        f"eddie: editor in workspace default, auth users on {sqlite_users_server.url}"
    )
    bad = run("whoami", OPSLOOP_TOKEN="opsk_" + "Z" * 43, **server)
    assert bad.returncode == 5 and bad.stderr.startswith("error: the API key is not valid")
    assert bad.stderr.count("\n") == 1
    denied = run("users", "create", "x", OPSLOOP_TOKEN=sqlite_users_server.keys["eddie"],
                 **server)  # fmt: skip
    assert denied.returncode == 6 and "needs the role 'admin'" in denied.stderr
    own = run("keys", "create", "--name", "laptop", "--role", "viewer",
              OPSLOOP_TOKEN=sqlite_users_server.keys["eddie"], **server)  # fmt: skip
    assert own.returncode == 0 and own.stdout.startswith("opsk_")
    revoked = run("keys", "revoke", own.stdout.strip()[:12],
                  OPSLOOP_TOKEN=sqlite_users_server.keys["eddie"], **server)  # fmt: skip
    assert revoked.returncode == 0 and "revoked key" in revoked.stdout


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]*)"', html)
    assert found is not None
    return found.group(1)


def test_the_ui_signs_in_with_an_api_key(sqlite_users_server: UsersServer) -> None:
    with httpx.Client(base_url=sqlite_users_server.url) as browser:
        form = browser.get("/login")
        origin = {"origin": sqlite_users_server.url}
        wrong = browser.post("/login", headers=origin, data={
            "token": "opsk_" + "Q" * 43, "next": "/", "csrf_token": _csrf(form.text)})  # fmt: skip
        assert wrong.status_code == 401 and "not valid" in wrong.text
        signed = browser.post("/login", headers=origin, data={
            "token": sqlite_users_server.keys["vic"], "next": "/pipelines",
            "csrf_token": _csrf(browser.get("/login").text)})  # fmt: skip
        assert signed.status_code == 303
        assert browser.get("/api/whoami").json()["name"] == "vic"
        page = browser.get("/pipelines")
        assert page.status_code == 200
        token = _csrf(page.text) if 'name="csrf_token"' in page.text else ""
        fire = browser.post("/pipelines/triggers/t/fire", headers=origin,
                            data={"csrf_token": token})  # fmt: skip
        assert fire.status_code == 403 and "maintainer" in fire.text  # a page, not a redirect


def test_whoami_on_a_token_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    with (
        LiveServer(url, str(tmp_path / "b"), token="tok") as server,
        httpx.Client(base_url=server.url, headers={"Authorization": "Bearer tok"}) as http,
    ):
        me = http.get("/api/whoami").json()
        wrong = http.get("/api/whoami", headers={"Authorization": "Bearer nope"})
    assert (me["auth"], me["role"]) == ("token", "admin")
    assert wrong.status_code == 403  # token mode answers a wrong token as it always has
