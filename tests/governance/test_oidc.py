"""OIDC single sign-on against a real OpenID provider on loopback (``oidc_idp``): the whole
authorization-code flow with PKCE, driven over HTTP the way a browser follows it; sockets beyond
loopback are blocked throughout."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import update

from tests.conftest import LiveServer
from tests.governance.oidc_idp import CLIENT_ID
from tests.governance.oidc_idp import CLIENT_SECRET
from tests.governance.oidc_idp import TestProvider
from tests.no_network import no_network  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("no_network")


@dataclass
class Sso:
    idp: TestProvider
    server: LiveServer
    database_url: str

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, follow_redirects=True, timeout=30)

    def sign_in(self, browser: httpx.Client, username: str, next: str = "/") -> httpx.Response:
        """Start on the server, consent at the provider as ``username``, end on the server."""
        consent = browser.get("/login/oidc", params={"next": next})
        assert consent.url.host == "127.0.0.1" and consent.url.port == self.idp.port, consent.text
        return browser.post(consent.url, data={"username": username, "confirm": "yes"})

    def callback_url(self, browser: httpx.Client, username: str) -> str:
        """The provider's redirect back to the server, not yet followed."""
        consent = browser.get("/login/oidc")
        answer = browser.post(consent.url, data={"username": username, "confirm": "yes"},
                              follow_redirects=False)  # fmt: skip
        assert answer.status_code == 302, answer.text
        return answer.headers["location"]

    def users(self) -> dict[str, str]:
        from opsloop import Client

        with Client(database_url=self.database_url, blob_url=str(self.server.url)) as local:
            return {u.name: u.role for u in local.governance.list_users()}


@pytest.fixture
def idp() -> Iterator[TestProvider]:
    with TestProvider() as provider:
        provider.add_user("alice", ["ml-team"])
        provider.add_user("bob", ["ml-admins", "ml-team"])
        provider.add_user("carol", ["marketing"])
        yield provider


@pytest.fixture
def sso(
    idp: TestProvider, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sso]:
    monkeypatch.setenv("OPSLOOP_AUTH", "users")
    monkeypatch.setenv("OPSLOOP_OIDC_ISSUER", idp.issuer)
    monkeypatch.setenv("OPSLOOP_OIDC_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("OPSLOOP_OIDC_CLIENT_SECRET_ENV", "TEST_IDP_SECRET")
    monkeypatch.setenv("TEST_IDP_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("OPSLOOP_OIDC_ROLE_MAP", "ml-admins=admin,ml-team=editor")
    monkeypatch.setenv("OPSLOOP_OIDC_PROVIDER_NAME", "TestIdP")
    with LiveServer(database_url, str(tmp_path / "blobs")) as server:
        idp.client.redirect_uris.append(f"{server.url}/login/oidc/callback")
        yield Sso(idp, server, database_url)


def _whoami(browser: httpx.Client) -> dict[str, str]:
    answer = browser.get("/api/whoami")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_first_sign_in_creates_the_user_with_the_mapped_role(sso: Sso) -> None:
    page = sso.server.url
    with sso.browser() as browser:
        login = browser.get("/login")
        assert "Sign in with TestIdP" in login.text
        answer = sso.sign_in(browser, "alice", next="/experiments")
        assert answer.status_code == 200
        assert "Signed in as" in answer.text and 'url=/experiments"' in answer.text
        assert str(answer.url).startswith(page)
        assert _whoami(browser) == {**_whoami(browser), "name": "alice", "role": "editor"}
        assert browser.get("/experiments").status_code == 200  # the session opens the UI
    with sso.browser() as browser:
        sso.sign_in(browser, "bob")
        assert _whoami(browser)["role"] == "admin"  # the highest mapped group wins
        assert _whoami(browser)["auth"] == "users"
    with sso.browser() as browser:
        sso.sign_in(browser, "carol")  # in no mapped group: the default role
        assert _whoami(browser)["role"] == "viewer"
    assert sso.users() == {"alice": "editor", "bob": "admin", "carol": "viewer"}


def test_role_follows_the_groups_at_every_sign_in_and_is_audited(sso: Sso) -> None:
    with sso.browser() as browser:
        sso.sign_in(browser, "alice")
        assert _whoami(browser)["role"] == "editor"
    sso.idp.users["alice"].groups = ["ml-admins"]
    with sso.browser() as browser:
        sso.sign_in(browser, "alice")
        assert _whoami(browser)["role"] == "admin"
        events = browser.get("/api/audit", params={"resource": "users/alice"}).json()["items"]
    actions = [(e["actor"], e["action"]) for e in events]
    assert ("oidc", "oidc set-role editor -> admin") in actions
    assert any(a.startswith("oidc create-user") for _, a in actions)
    assert sso.users() == {"alice": "admin"}  # the same user, not a second one


def test_the_session_is_a_key_the_user_can_see_and_revoke(sso: Sso) -> None:
    with sso.browser() as browser:
        sso.sign_in(browser, "alice")
        keys = browser.get("/api/keys").json()
        assert [k["name"] for k in keys] == ["web sign-in via TestIdP"]
        assert keys[0]["expires_at"] is not None
        csrf = browser.get("/experiments").text.split('name="csrf-token" content="')[1][:64]
        revoked = browser.delete(f"/api/keys/{keys[0]['id']}", headers={"X-CSRF-Token": csrf})
        assert revoked.status_code == 200, revoked.text
        assert browser.get("/api/whoami").status_code == 401


def _refused(answer: httpx.Response, status: int, words: str) -> None:
    assert answer.status_code == status, answer.text[:500]
    assert words in answer.text
    assert "Traceback" not in answer.text


def test_a_state_that_is_not_this_browsers_is_refused(sso: Sso) -> None:
    with sso.browser() as browser:
        back = sso.callback_url(browser, "alice")
        parts = urlsplit(back)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        forged = f"{parts.path}?{urlencode({**query, 'state': 'attacker-state'})}"
        _refused(browser.get(forged), 400, "state does not match")
        assert browser.get("/api/whoami").status_code == 401
    with sso.browser() as other:  # a browser that never started this flow
        _refused(other.get(back), 400, "sign-in expired or its cookie was blocked")
    assert sso.users() == {}


@pytest.mark.parametrize(
    ("knob", "value", "words"),
    [
        ("forge_nonce", True, "nonce"),
        ("token_issuer", "http://127.0.0.1:9/evil", "&#39;iss&#39;"),
        ("token_audience", "someone-else", "&#39;aud&#39;"),
        ("token_ttl_s", -3600, "&#39;exp&#39;"),
    ],
)
def test_id_tokens_that_fail_a_check_are_refused(
    sso: Sso, knob: str, value: object, words: str
) -> None:
    setattr(sso.idp, knob, value)
    with sso.browser() as browser:
        _refused(sso.sign_in(browser, "alice"), 401, words)
        assert browser.get("/api/whoami").status_code == 401
    assert sso.users() == {}


def test_a_disabled_user_is_refused_and_their_session_ends(sso: Sso) -> None:
    from opsloop.governance.tables import UserRow
    from opsloop.schema import open_store

    with sso.browser() as browser:
        sso.sign_in(browser, "alice")
        assert _whoami(browser)["name"] == "alice"
        store = open_store(sso.database_url)
        with store.write() as session:
            session.execute(update(UserRow).where(UserRow.name == "alice").values(disabled_at=1))
        store.dispose()
        sso.server.app.state.opsloop.authorizer.forget()
        assert browser.get("/api/whoami").status_code == 401
    with sso.browser() as browser:
        _refused(sso.sign_in(browser, "alice"), 401, "alice is disabled")


def test_a_provider_that_is_down_or_misconfigured_is_a_clear_503(sso: Sso) -> None:
    sso.idp.discovery_issuer = "https://elsewhere.example.com"
    with sso.browser() as browser:
        _refused(browser.get("/login/oidc"), 503, "says its issuer is")
    sso.server.app.state.oidc._metadata = None  # as after the cache's TTL
    sso.idp.stop()
    with sso.browser() as browser:
        _refused(browser.get("/login/oidc"), 503, "cannot be reached")
        assert "Sign in with TestIdP" in browser.get("/login").text  # the key login still works


def test_refused_sign_ins_are_in_the_audit_log(sso: Sso) -> None:
    sso.idp.token_audience = "someone-else"
    with sso.browser() as browser:
        sso.sign_in(browser, "alice")
    sso.idp.token_audience = None
    sso.idp.users["alice"].groups = ["ml-admins"]
    with sso.browser() as browser:
        sso.sign_in(browser, "alice")
        events = browser.get("/api/audit", params={"resource": "login/oidc"}).json()["items"]
    assert [(e["actor"], e["outcome"]) for e in events] == [("alice", 200), ("anonymous", 401)]
