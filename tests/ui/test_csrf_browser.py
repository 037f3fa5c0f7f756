"""Sessions and CSRF in a real browser (issue 22): sign in with the form, fire a trigger with the
page's button; a tampered token and a page on another port of the same host (the same site,
so the SameSite=Strict cookie goes along) are both refused; signing out ends the session."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from opsloop import Client
from opsloop.web.deps import SESSION_COOKIE
from tests.conftest import LiveServer
from tests.ui.conftest import BrowserPage

TOKEN = "br0wser-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder: Path = tmp_path_factory.mktemp("csrf-ui")
    with LiveServer(f"sqlite:///{folder / 'ui.db'}", str(folder / "b"), token=TOKEN) as live:
        sdk = Client(server_url=live.url, token=TOKEN)
        for name in ("hook", "target"):
            sdk.triggers.create(name, "no_such_module:pipe", "webhook")
        sdk.close()
        yield live


def _firings(server: LiveServer, name: str) -> list[str]:
    sdk = Client(server_url=server.url, token=TOKEN)
    reasons = [f.reason for f in sdk.triggers.firings(name)]
    sdk.close()
    return reasons


def _sign_in(ui: BrowserPage, server: LiveServer) -> None:
    ui.page.goto(f"{server.url}/pipelines")
    assert "/login" in ui.page.url
    ui.page.fill('input[name="token"]', TOKEN)
    ui.page.click('form[action="/login"] button[type="submit"]')
    ui.page.wait_for_url(f"{server.url}/pipelines")


def test_forms_carry_the_session_token_and_a_tampered_one_is_refused(
    ui: BrowserPage, server: LiveServer
) -> None:
    _sign_in(ui, server)
    cookie = next(c for c in ui.page.context.cookies() if c["name"] == SESSION_COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]
    ui.page.locator("#trigger-hook button.fire").click()
    ui.page.wait_for_url(f"{server.url}/pipelines#trigger-hook")
    assert _firings(server, "hook") == ["fired from the web UI"]

    ui.allow_console("status of 403")
    field = ui.page.locator('#trigger-hook input[name="csrf_token"]')
    field.evaluate("input => { input.value = 'forged' }")
    ui.page.locator("#trigger-hook button.fire").click()
    ui.page.wait_for_selector(".error-page")
    assert "CSRF token is not the one of your session" in ui.page.inner_text("main")
    assert _firings(server, "hook") == ["fired from the web UI"]  # no second firing


class _Attacker(BaseHTTPRequestHandler):
    """A page on another port of the same host that posts to the opsloop server."""

    target = ""

    def do_GET(self) -> None:
        page = (
            f'<!doctype html><form id="evil" method="post" action="{self.target}">'
            '<button type="submit">win a prize</button></form>'
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args: object) -> None:
        pass


def test_a_page_on_another_port_cannot_write_with_the_cookie(
    ui: BrowserPage, server: LiveServer
) -> None:
    _sign_in(ui, server)
    handler = type(
        "Attacker", (_Attacker,), {"target": f"{server.url}/pipelines/triggers/target/fire"}
    )
    attacker = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=attacker.serve_forever, daemon=True)
    thread.start()
    try:
        ui.allow_console("status of 403")
        ui.page.goto(f"http://127.0.0.1:{attacker.server_address[1]}/")
        ui.page.click("#evil button")
        ui.page.wait_for_selector(".error-page")
        assert "refused a POST" in ui.page.inner_text("main")
    finally:
        attacker.shutdown()
        attacker.server_close()
    assert _firings(server, "target") == []


def test_signing_out_ends_the_session(ui: BrowserPage, server: LiveServer) -> None:
    _sign_in(ui, server)
    cookie = next(c for c in ui.page.context.cookies() if c["name"] == SESSION_COOKIE)
    ui.page.click("#sign-out button")
    ui.page.wait_for_url(f"{server.url}/login")
    ui.page.goto(f"{server.url}/pipelines")
    assert "/login" in ui.page.url
    replay = httpx.get(f"{server.url}/api/triggers", cookies={SESSION_COOKIE: cookie["value"]})
    assert replay.status_code == 401
