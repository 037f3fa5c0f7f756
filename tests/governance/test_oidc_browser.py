"""OIDC sign-in in a real browser (Debian's chromium through Playwright): the login page's
button, the provider's consent form, and back on the server signed in, with the session cookie
the page after the callback needs (it is ``SameSite=Strict``, so the callback must not simply
redirect: see ``opsloop.governance.oidc_views``)."""

from __future__ import annotations

from typing import Any

from tests.governance.test_oidc import Sso
from tests.governance.test_oidc import idp  # noqa: F401  (fixtures)
from tests.governance.test_oidc import sso  # noqa: F401  (fixtures)
from tests.no_network import no_network  # noqa: F401  (a fixture)
from tests.ui.conftest import browser  # noqa: F401  (fixtures)
from tests.ui.conftest import ui  # noqa: F401  (fixtures)


def test_sign_in_with_the_provider_in_a_browser(
    sso: Sso,  # noqa: F811
    ui: Any,  # noqa: F811
    no_network: list[str],  # noqa: F811
) -> None:
    page = ui.page
    page.goto(f"{sso.server.url}/experiments")
    assert "/login" in page.url  # not signed in yet
    page.click("text=Sign in with TestIdP")
    page.wait_for_url(f"{sso.idp.issuer}/authorize*")
    page.fill("#username", "bob")
    page.click("#allow")
    page.wait_for_url(f"{sso.server.url}/experiments")
    assert page.locator("#sign-out").is_visible()  # a signed-in page, not the login form
    me = page.evaluate("fetch('/api/whoami').then(r => r.json())")
    assert (me["name"], me["role"]) == ("bob", "admin")
    page.click("#sign-out button")
    page.wait_for_url(f"{sso.server.url}/login*")
    assert no_network == []
