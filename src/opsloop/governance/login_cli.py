"""``opsloop login``: keep an API key for a server in ``~/.opsloop/opsloop.toml``
(:mod:`.credentials`), pasted, or minted by the server after a sign-in through its OpenID
provider (``--oidc``).

``--oidc`` takes the device flow (RFC 8628: a code to enter on any device's browser) when the
provider offers it, else a browser sign-in coming back to a one-shot listener on
``127.0.0.1`` (:mod:`.oidc_loopback`). Either way the server checks the ID token exactly as at a
web sign-in and mints the key (:mod:`.oidc_api`): the client secret and the provider's tokens
never reach this machine.
"""

from __future__ import annotations

import os
import time
import webbrowser
from typing import Annotated
from typing import Any

import typer

from opsloop.console.commands import JsonOption
from opsloop.console.output import print_outcome
from opsloop.console.output import when

__all__ = ["login"]

_POLL_CAP_S = 60  # the longest wait between device polls, whatever the provider says


def login(
    server: Annotated[
        str | None,
        typer.Option(help="The opsloop server (default: server_url / OPSLOOP_SERVER_URL)."),
    ] = None,
    oidc: Annotated[
        bool, typer.Option("--oidc", help="Sign in through the server's OpenID provider.")
    ] = False,
    browser: Annotated[
        bool,
        typer.Option(help="Open the sign-in page in a browser (--oidc without a device flow)."),
    ] = True,
    timeout: Annotated[
        int, typer.Option(min=10, max=3600, help="Seconds to wait for the sign-in.")
    ] = 300,
    json_: JsonOption = False,
) -> None:
    """Save an API key for a server in ~/.opsloop/opsloop.toml, for the CLI and the SDK.

    With --oidc you sign in through the server's identity provider (SSO) and the server mints a
    key for you, valid 30 days: a code to enter in any browser when the provider offers the
    device flow, else a browser window on this machine. Without it, paste a key that
    `opsloop keys create` made. Examples:

      opsloop login --oidc --server https://opsloop.example.com
      opsloop login --server https://opsloop.example.com
    """
    from opsloop.config import load_settings
    from opsloop.errors import InvalidInput
    from opsloop.governance.credentials import save_login
    from opsloop.governance.credentials import shadowed_by
    from opsloop.kernel.transport import HttpTransport

    settings = load_settings()
    url = (server or settings.server_url or "").rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise InvalidInput("give the server: --server https://opsloop.example.com")
    http = HttpTransport(url, timeout=30.0, retries=1)
    try:
        if oidc:
            signed = _oidc(http, browser=browser, timeout_s=timeout)
            secret, key = signed["key"]["secret"], signed["key"]["key"]
            who = {"user": signed["user"], "role": signed["role"], "key_id": key["id"],
                   "expires_at": key["expires_at"]}  # fmt: skip
        else:
            secret = typer.prompt("API key", hide_input=True).strip()
            me = HttpTransport(url, secret, timeout=30.0, retries=1).json("GET", "/api/whoami")
            who = {"user": me["name"], "role": me["role"], "key_id": None, "expires_at": None}
    finally:
        http.close()
    path = save_login(settings.home, url, secret)
    until = f", key valid until {when(who['expires_at'])} UTC" if who["expires_at"] else ""
    line = f"signed in as {who['user']} ({who['role']}) on {url}{until}; saved in {path}"
    print_outcome({**who, "server": url, "saved_in": str(path)}, line, as_json=json_)
    hidden = shadowed_by(settings.home, os.environ)
    if hidden:
        typer.echo(f"note: {hidden} takes precedence over the saved key", err=True)


def _oidc(http: Any, *, browser: bool, timeout_s: int) -> dict[str, Any]:
    from opsloop.errors import NotFound

    try:
        info = http.json("GET", "/api/auth/oidc")
    except NotFound:
        raise NotFound(
            f"{http.base_url} has no OpenID sign-in (it runs without --oidc-issuer): "
            "use opsloop login with an API key"
        ) from None
    if info["device_flow"]:
        return _device(http, timeout_s)
    return _loopback(http, info, browser=browser, timeout_s=timeout_s)


def _device(http: Any, timeout_s: int) -> dict[str, Any]:
    from opsloop.errors import InvalidInput

    started = http.json("POST", "/api/auth/oidc/device", idempotent=False)
    where = started.get("verification_uri_complete") or started["verification_uri"]
    typer.echo(f"Open {where} and enter the code {started['user_code']}", err=True)
    interval = max(1, int(started.get("interval") or 5))
    deadline = time.monotonic() + min(timeout_s, int(started["expires_in"]))
    while time.monotonic() < deadline:
        time.sleep(min(interval, _POLL_CAP_S))
        found = http.json("POST", "/api/auth/oidc/token", idempotent=False,
                          json={"device_code": started["device_code"]})  # fmt: skip
        if found["status"] == "signed_in":
            return dict(found)
        if found["status"] == "slow_down":
            interval += 5  # RFC 8628 3.5: for this and every later poll
    raise InvalidInput("the device sign-in was not approved in time: run opsloop login again")


def _loopback(http: Any, info: dict[str, Any], *, browser: bool, timeout_s: int) -> dict[str, Any]:
    from opsloop.governance.oidc_loopback import LoopbackFlow

    with LoopbackFlow() as flow:
        url = flow.authorization_url(info["authorization_endpoint"], info["client_id"],
                                     info["scopes"])  # fmt: skip
        typer.echo(f"Sign in with {info['provider_name']} in your browser:\n{url}", err=True)
        if browser:
            webbrowser.open(url)
        code = flow.wait(timeout_s)
        body = {"code": code, "code_verifier": flow.verifier, "redirect_uri": flow.redirect_uri,
                "nonce": flow.nonce}  # fmt: skip
    return dict(http.json("POST", "/api/auth/oidc/token", idempotent=False, json=body))
