"""The web UI's single sign-on: ``/login/oidc`` starts the authorization-code flow, and
``/login/oidc/callback`` ends it with the same web session the key login opens.

The flow's secrets (``state``, ``nonce``, the PKCE code verifier) and the page to return to are
kept in a short-lived cookie (``opsloop_oidc``: HttpOnly, ``SameSite=Lax`` so that the
provider's redirect back carries it, path ``/login/oidc``, ten minutes). They are random per
flow and bound to this browser: the callback's ``state`` must equal the cookie's (an attacker
cannot make a victim's browser finish a flow the attacker started), the ID token's ``nonce``
too (a token cannot be replayed into another flow), and the code is redeemed with the
verifier only this browser holds (a stolen code is worthless). Nothing needs a server-side
row, so any worker of any server process over the same store can finish a flow.

The callback answers a small page that moves on to the target by itself, rather than a redirect:
the session cookie is ``SameSite=Strict``, and a browser does not send it on a redirect chain
that began on the provider's site, so a redirect would land on the login page again.

Every failure is the login page with one line and a 4xx (or 503: the provider is down or
misconfigured), recorded in the audit log with its status; never a 5xx traceback.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from typing import Any

from fastapi import APIRouter
from fastapi import FastAPI
from fastapi import Request
from fastapi.responses import RedirectResponse
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from opsloop.config import Settings
from opsloop.errors import InvalidInput
from opsloop.governance import audit
from opsloop.governance.oidc_api import router as cli_sign_in
from opsloop.governance.oidc_config import oidc_config
from opsloop.governance.oidc_provider import OidcProvider
from opsloop.governance.oidc_provider import ProviderUnavailable
from opsloop.governance.oidc_provider import SignInRefused
from opsloop.governance.oidc_users import SignedIn
from opsloop.governance.oidc_users import sign_in
from opsloop.web.deps import SESSION_COOKIE
from opsloop.web.deps import AppState
from opsloop.web.deps import State
from opsloop.web.routes import login_form
from opsloop.web.routes import safe_next
from opsloop.web.sessions import SESSION_TTL_S
from opsloop.web.sessions import start_session
from opsloop.web.shell import render

__all__ = ["FLOW_COOKIE", "install_oidc", "router"]

FLOW_COOKIE = "opsloop_oidc"
_FLOW_TTL_S = 600
_MAX_COOKIE = 2048
router = APIRouter(include_in_schema=False)


def install_oidc(app: FastAPI, settings: Settings) -> None:
    """Serve OIDC sign-in on ``app`` when ``settings`` name an issuer (else nothing).

    Raises:
        InvalidInput: The OIDC settings are incomplete or malformed (one line).
    """
    config = oidc_config(settings)
    if config is None:
        return
    if settings.auth_mode != "users":
        raise InvalidInput("--oidc-issuer signs users in: use it with --auth users")
    app.state.oidc = OidcProvider(config)
    app.state.sign_in_with = config.provider_name
    app.include_router(router)
    app.include_router(cli_sign_in, prefix="/api")  # open: the CLI's sign-in mints its key


def _provider(request: Request) -> OidcProvider:
    provider: OidcProvider = request.app.state.oidc
    return provider


def _callback_url(request: Request) -> str:
    return str(request.url_for("oidc_callback"))


@router.get("/login/oidc")
async def oidc_start(request: Request, next: str = "/") -> Response:
    """Send the browser to the provider, with a fresh state, nonce and PKCE verifier."""
    target = safe_next(next[:2000])
    flow = {
        "state": secrets.token_urlsafe(24),
        "nonce": secrets.token_urlsafe(24),
        "verifier": secrets.token_urlsafe(48),
        "next": target,
    }
    try:
        url = await _provider(request).authorization_url(
            _callback_url(request), state=flow["state"], nonce=flow["nonce"],
            code_verifier=flow["verifier"],
        )  # fmt: skip
    except ProviderUnavailable as exc:
        return login_form(request, target, exc.message, exc.http_status)
    response = RedirectResponse(url, status_code=303)
    encoded = base64.urlsafe_b64encode(json.dumps(flow).encode()).decode()
    response.set_cookie(FLOW_COOKIE, encoded, max_age=_FLOW_TTL_S, path="/login/oidc",
                        secure=request.url.scheme == "https", httponly=True,
                        samesite="lax")  # fmt: skip
    return response


def _flow(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLOW_COOKIE, "")
    if not raw or len(raw) > _MAX_COOKIE:
        return None
    try:
        found = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except ValueError:
        return None
    keys = ("state", "nonce", "verifier", "next")
    if not isinstance(found, dict) or not all(isinstance(found.get(k), str) for k in keys):
        return None
    return {k: found[k] for k in keys}


@router.get("/login/oidc/callback", name="oidc_callback")
async def oidc_callback(
    request: Request,
    state: State,
    code: str = "",
    error: str = "",
    error_description: str = "",
) -> Response:
    """Check the provider's answer, sign the user in and open their web session."""
    flow = _flow(request)
    target = flow["next"] if flow else "/"
    try:
        if flow is None:
            raise InvalidInput("this sign-in expired or its cookie was blocked: start again")
        if error:
            detail = f": {error_description[:200]}" if error_description else ""
            raise SignInRefused(f"the identity provider refused the sign-in ({error[:50]}){detail}")
        given_state = request.query_params.get("state", "")
        if not given_state or not hmac.compare_digest(given_state, flow["state"]):
            raise InvalidInput("this sign-in's state does not match the one this browser sent: "
                           "start again from this server's login page")  # fmt: skip
        if not code or len(code) > 4096:
            raise InvalidInput("the identity provider sent no authorization code")
        provider = _provider(request)
        claims = await provider.redeem(
            code, redirect_uri=_callback_url(request), code_verifier=flow["verifier"],
            nonce=flow["nonce"],
        )  # fmt: skip
        signed = await run_in_threadpool(_sign_in, state, provider, claims)
    except (InvalidInput, SignInRefused, ProviderUnavailable) as exc:
        await run_in_threadpool(_record, state, "anonymous", exc.http_status)
        response = login_form(request, target, exc.message, exc.http_status)
        response.delete_cookie(FLOW_COOKIE, path="/login/oidc")
        return response
    authorizer = state.authorizer  # set: install_oidc serves users mode only
    if authorizer is not None:
        authorizer.forget()  # the role may have changed
    secret = authorizer.session_secret if authorizer is not None else ""
    session_id = await run_in_threadpool(start_session, state.store, secret, signed.key.key.id)
    response = render(request, "oidc/continue.html",
                      {"title": "Signed in", "target": target, "user": signed.user,
                       "role": signed.role})  # fmt: skip
    response.set_cookie(SESSION_COOKIE, session_id, max_age=SESSION_TTL_S, path="/",
                        secure=request.url.scheme == "https", httponly=True,
                        samesite="strict")  # fmt: skip
    response.delete_cookie(FLOW_COOKIE, path="/login/oidc")
    return response


def _sign_in(state: AppState, provider: OidcProvider, claims: dict[str, Any]) -> SignedIn:
    config = provider.config
    with state.store.write() as session:
        signed = sign_in(session, config, claims, key_ttl_s=SESSION_TTL_S,
                         key_name=f"web sign-in via {config.provider_name}")  # fmt: skip
        audit.append(session, actor=signed.user, action="GET /login/oidc/callback",
                     resource="login/oidc", outcome=200)  # fmt: skip
    return signed


def _record(state: AppState, actor: str, status: int) -> None:
    """A refused sign-in in the audit log (as a refused key login is)."""
    audit.record(state.store, actor, "GET /login/oidc/callback", "login/oidc", status)
