"""The shell's own pages (home, login, global search, error pages) and ``install_ui``.

``install_ui`` mounts the shell and each domain's views on the app; every page but the login
page sits behind the same token check as the API, and a browser that lacks the token is sent
to ``/login`` instead of getting a JSON error. Signing in opens a server-side session
(:mod:`opsloop.web.sessions`) whose id is the cookie; signing out deletes it.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable
from collections.abc import Sequence
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import quote
from urllib.parse import urlencode

from blake3 import blake3
from fastapi import APIRouter
from fastapi import Depends
from fastapi import FastAPI
from fastapi import Query
from fastapi import Request
from fastapi.responses import RedirectResponse
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from opsloop.errors import OpsloopError
from opsloop.errors import PermissionDenied
from opsloop.errors import Unauthenticated
from opsloop.web.csrf import CSRF_FIELD
from opsloop.web.csrf import check_origin
from opsloop.web.csrf import check_token
from opsloop.web.deps import SESSION_COOKIE
from opsloop.web.deps import WORKSPACE_HEADER
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State
from opsloop.web.deps import authenticate_key
from opsloop.web.deps import check_token_guess
from opsloop.web.deps import require_token
from opsloop.web.deps import session_secret
from opsloop.web.sessions import SESSION_TTL_S
from opsloop.web.sessions import TOKEN_SUBJECT
from opsloop.web.sessions import end_session
from opsloop.web.sessions import find_session
from opsloop.web.sessions import start_session
from opsloop.web.shell import SearchHit
from opsloop.web.shell import UiDomain
from opsloop.web.shell import build_environment
from opsloop.web.shell import render
from opsloop.web.throttle import TooManyFailures

__all__ = ["install_ui", "login_form", "page_error_response", "safe_next"]

_MAX_FORM_BYTES = 16 * 1024
_LOGIN_COOKIE = "opsloop_login"  # the login form's CSRF token, before any session exists
_LOGIN_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def install_ui(app: FastAPI, domains: Sequence[tuple[UiDomain, APIRouter]]) -> None:
    """Serve the shell and each ``(domain, views router)`` pair on ``app``.

    Static files live under ``/static/<digest>/<domain>/``, where the digest covers every
    asset: browsers cache them for a year (no revalidation round trip per JS module), and a
    changed file changes every URL at once, relative module imports included.
    """
    folders = {"shell": files("opsloop.web") / "static"}
    for domain, _ in domains:
        folder = files(domain.package) / "static"
        if folder.is_dir():
            folders[domain.key] = folder
    prefix = f"/static/{_assets_digest(folders.values())}"
    for key, folder in folders.items():
        app.mount(f"{prefix}/{key}", _ImmutableFiles(directory=str(folder)), name=f"static-{key}")
    app.state.ui_env = build_environment([d for d, _ in domains], static=prefix)
    app.state.ui_domains = [d for d, _ in domains]
    app.include_router(_public)
    auth = [Depends(require_token)]
    app.include_router(_pages, dependencies=auth)
    for _, router in domains:
        app.include_router(router, dependencies=auth, include_in_schema=False)


class _ImmutableFiles(StaticFiles):
    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def _assets_digest(folders: Iterable[Traversable]) -> str:
    digest = blake3()
    for folder in folders:
        for path in sorted(Path(str(folder)).rglob("*")):
            if path.is_file():
                digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def page_error_response(request: Request, error: OpsloopError) -> Response:
    """The HTML answer to an error on a page: the login page, or an error page (a signed-in
    user whose role is too low sees the 403 naming the role; signing in again would not help)."""
    role_too_low = isinstance(error, PermissionDenied) and "required_role" in error.details
    if isinstance(error, Unauthenticated | PermissionDenied) and not role_too_low:
        return RedirectResponse(f"/login?next={quote(_local_path(request))}", status_code=303)
    return render(
        request,
        "error.html",
        {"title": _TITLES.get(error.http_status, "Error"), "error": error},
        status_code=error.http_status,
    )


_TITLES = {400: "Bad request", 404: "Not found", 409: "Conflict", 503: "Store unavailable"}

_public = APIRouter(include_in_schema=False)
_pages = APIRouter(include_in_schema=False)


@_public.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    return _login_form(request, _safe_next(next))


@_public.post("/login")
async def login(request: Request, state: State) -> Response:
    """Open a session for the server token (the cookie holds the session id, never the token).

    The form must come from this server's own login page: same origin, and its hidden
    ``csrf_token`` equal to the ``opsloop_login`` cookie that page set (no one can sign a
    browser in from elsewhere). Wrong tokens count against the client's failure limit.

    In ``users`` mode the form's token field takes a user's API key: the session acts as that
    user, within the key's limits, and ends when the key is revoked or expires.
    """
    body = await request.body()
    form = parse_qs(body[:_MAX_FORM_BYTES].decode("utf-8", "replace"))
    token = form.get("token", [""])[0]
    target = _safe_next(form.get("next", ["/"])[0])
    check_origin(request)
    given = form.get(CSRF_FIELD, [""])[0]
    cookie = request.cookies.get(_LOGIN_COOKIE, "")
    if not given or not cookie or not hmac.compare_digest(given.encode(), cookie.encode()):
        problem = "The sign-in form expired (or its cookie was blocked): submit it again."
        return _login_form(request, target, problem, status_code=403)
    authorizer = state.authorizer
    expected = state.settings.token
    if authorizer is None and not expected:
        return RedirectResponse(target, status_code=303)
    try:
        if authorizer is not None:
            key_id, _ = await authenticate_key(request, state, authorizer, token.strip())
            secret, subject = authorizer.session_secret, key_id
        else:
            check_token_guess(request, state, token, [expected or ""])
            secret, subject = expected or "", TOKEN_SUBJECT
    except TooManyFailures as exc:
        response = _login_form(request, target, exc.message, status_code=429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except Unauthenticated:
        return _login_form(request, target, "That API key is not valid (or has expired).", 401)
    except PermissionDenied:
        return _login_form(request, target, "That token is not valid for this server.", 403)
    session_id = await run_in_threadpool(start_session, state.store, secret, subject)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=SESSION_TTL_S,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(_LOGIN_COOKIE, path="/login")
    return response


@_public.post("/logout")
async def logout(request: Request, state: State) -> Response:
    """End the session (its row is deleted: the old cookie opens nothing anywhere after)."""
    session_id = request.cookies.get(SESSION_COOKIE, "")
    token = session_secret(state)
    if session_id and token:
        live = await run_in_threadpool(find_session, state.store, token, session_id)
        if live is not None:  # only the session's own pages may end it
            check_origin(request)
            await check_token(request, live.csrf_token)
            await run_in_threadpool(end_session, state.store, token, session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _login_form(
    request: Request, target: str, problem: str = "", status_code: int = 200
) -> Response:
    """The login page, with a fresh (or the browser's current) login CSRF token in both its
    hidden field and the ``opsloop_login`` cookie (double submit: a session does not exist yet)."""
    current = request.cookies.get(_LOGIN_COOKIE, "")
    login_token = current if _LOGIN_TOKEN.fullmatch(current) else secrets.token_urlsafe(32)
    request.state.csrf_token = login_token
    # a domain's single sign-on (governance's OIDC) names its provider here for the button
    sign_in_with = getattr(request.app.state, "sign_in_with", None)
    context = {"next": target, "problem": problem, "sign_in_with": sign_in_with}
    response = render(request, "login.html", context, status_code=status_code)
    response.set_cookie(
        _LOGIN_COOKIE,
        login_token,
        max_age=3600,
        path="/login",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@_pages.get("/")
def home(request: Request) -> Response:
    """The first domain's page. A workspace the request names (``/w/NAME/``: the mlflow
    client's tracking URI for a workspace, whose printed links are ``/w/NAME/#/…``) becomes
    the page's choice (``?workspace=``); the browser keeps a link's fragment through the
    redirect, for the page's script to open what the link names (``static/app.js``)."""
    domains: list[UiDomain] = request.app.state.ui_domains
    target = domains[0].href if domains else "/docs"
    named = request.headers.get(WORKSPACE_HEADER)
    if named:
        target += "?" + urlencode({"workspace": named})
    return RedirectResponse(target, status_code=307)


@_pages.get("/search")
def search(
    request: Request,
    session: ReadSession,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Everything whose name or id matches ``q``, grouped by domain."""
    text = q.strip()
    hits: list[SearchHit] = []
    if text:
        for domain in request.app.state.ui_domains:
            if domain.find is not None:
                hits.extend(domain.find(session, text))
    return render(request, "search.html", {"title": "Search", "q": text, "hits": hits})


def login_form(
    request: Request, target: str, problem: str = "", status_code: int = 200
) -> Response:
    """The login page showing ``problem``: where a domain's sign-in flow (OIDC) lands on error,
    with the key form still usable. ``target`` is made a same-site path."""
    return _login_form(request, _safe_next(target), problem, status_code)


def safe_next(target: str) -> str:
    """``target`` if it is a same-site path, else ``/`` (see :func:`_safe_next`)."""
    return _safe_next(target)


def _safe_next(target: str) -> str:
    """Only same-site paths: never an absolute URL or ``//host`` (no open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _local_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")
