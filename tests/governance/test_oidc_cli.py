"""``opsloop login --oidc`` against a real OpenID provider on loopback (``oidc_cli_idp``): the
browser flow back to the CLI's loopback listener (httpx plays the browser) and the device flow
(the person approves on the provider's verification page), each ending with a key the server
minted, saved in ``$OPSLOOP_HOME/opsloop.toml`` and working; the REST exchange's bad input.
Sockets beyond loopback are blocked in this process; the CLI runs as a real process."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from opsloop.governance.credentials import save_login
from tests.conftest import LiveServer
from tests.governance.oidc_cli_idp import CliProvider
from tests.governance.oidc_idp import CLIENT_ID
from tests.governance.oidc_idp import CLIENT_SECRET
from tests.no_network import no_network  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("no_network")
OPSLOOP = str(Path(sys.executable).with_name("opsloop"))
DAY_MS = 86_400_000


@dataclass
class Sso:
    idp: CliProvider
    server: LiveServer
    home: Path

    def login(self, *args: str) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if k != "OPSLOOP_TOKEN"}
        env["OPSLOOP_HOME"] = str(self.home)
        return subprocess.Popen(
            [OPSLOOP, "login", "--oidc", "--server", self.server.url, "--no-browser", "--json",
             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip

    def saved(self) -> dict[str, str]:
        return tomllib.loads((self.home / "opsloop.toml").read_text())

    def http(self, key: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=30)


def _sso(idp: CliProvider, database_url: str, tmp_path: Path, monkeypatch) -> Iterator[Sso]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPSLOOP_AUTH", "users")
    monkeypatch.setenv("OPSLOOP_OIDC_ISSUER", idp.issuer)
    monkeypatch.setenv("OPSLOOP_OIDC_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("OPSLOOP_OIDC_CLIENT_SECRET_ENV", "TEST_IDP_SECRET")
    monkeypatch.setenv("TEST_IDP_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("OPSLOOP_OIDC_ROLE_MAP", "ml-admins=admin,ml-team=editor")
    monkeypatch.setenv("OPSLOOP_OIDC_PROVIDER_NAME", "TestIdP")
    with LiveServer(database_url, str(tmp_path / "blobs")) as server:
        yield Sso(idp, server, tmp_path / "home")


@pytest.fixture
def browser_sso(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sso]:
    with CliProvider() as idp:
        idp.add_user("alice", ["ml-team"])
        yield from _sso(idp, database_url, tmp_path, monkeypatch)


@pytest.fixture
def device_sso(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sso]:
    with CliProvider(device=True) as idp:
        idp.add_user("bob", ["ml-admins"])
        yield from _sso(idp, sqlite_url, tmp_path, monkeypatch)


def _finish(login: subprocess.Popen[str]) -> dict:
    out, err = login.communicate(timeout=120)
    assert login.returncode == 0, err
    assert "Traceback" not in err
    return dict(json.loads(out))


def _check_key(sso: Sso, answer: dict, user: str, role: str) -> None:
    saved = sso.saved()
    assert saved["server_url"] == sso.server.url and saved["token"].startswith("opsk_")
    assert stat.S_IMODE((sso.home / "opsloop.toml").stat().st_mode) == 0o600
    assert (answer["user"], answer["role"]) == (user, role)
    assert abs(answer["expires_at"] - (time.time() * 1000 + 30 * DAY_MS)) < DAY_MS
    with sso.http(saved["token"]) as http:
        assert http.get("/api/whoami").json()["name"] == user
        (key,) = http.get("/api/keys").json()
    assert key["name"] == "cli sign-in via TestIdP" and key["id"] == answer["key_id"]


def test_browser_sign_in_comes_back_to_the_cli(browser_sso: Sso) -> None:
    login = browser_sso.login()
    assert login.stderr is not None
    assert "Sign in with TestIdP" in login.stderr.readline()
    url = login.stderr.readline().strip()
    assert url.startswith(f"{browser_sso.idp.issuer}/authorize?") and "code_challenge=" in url
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        consent = browser.get(url)
        assert consent.status_code == 200, consent.text
        back = browser.post(consent.url, data={"username": "alice", "confirm": "yes"})
    assert back.status_code == 200 and back.url.host == "127.0.0.1"
    assert "Signed in" in back.text
    answer = _finish(login)
    _check_key(browser_sso, answer, "alice", "editor")
    events = _audit(browser_sso)
    assert ("alice", "POST /api/auth/oidc/token", 200) in events


def test_device_sign_in(device_sso: Sso) -> None:
    login = device_sso.login()
    assert login.stderr is not None
    line = login.stderr.readline()
    found = re.fullmatch(r"Open (\S+) and enter the code (\S+)\n", line)
    assert found is not None, line
    page, code = found.groups()
    assert page.startswith(f"{device_sso.idp.issuer}/device")
    with httpx.Client(timeout=30) as person:
        assert person.get(page).status_code == 200
        allowed = person.post(page, data={"user_code": code, "username": "bob", "allow": "yes"})
    assert allowed.status_code == 200, allowed.text
    _check_key(device_sso, _finish(login), "bob", "admin")


def test_device_pending_denied_and_bad_input(device_sso: Sso) -> None:
    with httpx.Client(base_url=device_sso.server.url, timeout=30) as cli:
        assert cli.get("/api/auth/oidc").json()["device_flow"] is True
        started = cli.post("/api/auth/oidc/device").json()
        poll = {"device_code": started["device_code"]}
        pending = cli.post("/api/auth/oidc/token", json=poll)
        assert pending.status_code == 202 and pending.json()["status"] == "authorization_pending"
        with httpx.Client(timeout=30) as person:
            person.post(started["verification_uri"],
                        data={"user_code": started["user_code"], "username": "bob"})  # fmt: skip
        denied = cli.post("/api/auth/oidc/token", json=poll)
        assert denied.status_code == 401 and "denied" in denied.json()["error"]["message"]

        for body, status, message in [
            ({}, 400, "give device_code, or code"),
            ({"code": "x", "code_verifier": "v" * 43, "redirect_uri": "https://evil.example/cb"},
             400, "redirect_uri must be the CLI's loopback listener"),
            ({"code": "forged", "code_verifier": "v" * 43,
              "redirect_uri": "http://127.0.0.1:9/callback"}, 401, "refused the sign-in"),
            ({"device_code": "forged"}, 401, "refused the sign-in"),
        ]:  # fmt: skip
            answer = cli.post("/api/auth/oidc/token", json=body)
            assert answer.status_code == status, (body, answer.text)
            assert message in answer.json()["error"]["message"]
    events = _audit(device_sso)
    assert ("anonymous", "POST /api/auth/oidc/token", 401) in events
    assert ("anonymous", "POST /api/auth/oidc/token", 202) in events


def _audit(sso: Sso) -> list[tuple[str, str, int]]:
    from opsloop.governance import audit

    store = sso.server.app.state.opsloop.store
    with store.read() as session:
        return [(e.actor, e.action, e.outcome) for e in audit.list_events(session, limit=1000)]


def test_login_without_oidc_on_the_server(sqlite_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "OPSLOOP_HOME": str(tmp_path / "home")}
    env.pop("OPSLOOP_TOKEN", None)
    with LiveServer(sqlite_url, str(tmp_path / "b"), token="tok") as server:
        failed = subprocess.run([OPSLOOP, "login", "--oidc", "--server", server.url],
                                capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
        pasted = subprocess.run([OPSLOOP, "login", "--server", server.url], input="tok\n",
                                capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert failed.returncode == 3 and failed.stderr.count("\n") == 1
    assert "has no OpenID sign-in" in failed.stderr
    assert pasted.returncode == 0, pasted.stderr
    assert tomllib.loads((tmp_path / "home" / "opsloop.toml").read_text())["token"] == "tok"


def test_save_login_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "opsloop.toml"
    path.write_text('# mine\nblob_url = "/x"\ntoken = "old"\n[storage_options]\ntoken = "s3"\n')
    save_login(tmp_path, "http://h:1", 'se"cret')
    text = path.read_text()
    assert text.startswith('server_url = "http://h:1"\n# mine\n')
    expected = {"server_url": "http://h:1", "blob_url": "/x", "token": 'se"cret',
                "storage_options": {"token": "s3"}}  # fmt: skip
    assert tomllib.loads(text) == expected
    path.write_text("not = = toml")
    with pytest.raises(Exception, match="is not valid TOML"):
        save_login(tmp_path, "http://h:1", "x")
    assert path.read_text() == "not = = toml"
