"""The shell's own pages (home, login, global search, error pages) and ``install_ui``.

``install_ui`` mounts the shell and each domain's views on the app; every page but the login
page sits behind the same token check as the API, and a browser that lacks the token is sent
to ``/login`` instead of getting a JSON error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from blake3 import blake3
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from opsloop.errors import OpsloopError, PermissionDenied, Unauthenticated
from opsloop.web.deps import TOKEN_COOKIE, ReadSession, State, require_token, token_matches
from opsloop.web.shell import SearchHit, UiDomain, build_environment, render

__all__ = ["install_ui", "is_page_request", "page_error_response"]

_MAX_FORM_BYTES = 16 * 1024
_MACHINE_PATHS = ("/api/", "/v1/", "/static/", "/healthz", "/docs", "/openapi.json", "/metrics")


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


def is_page_request(request: Request) -> bool:
    """Whether an error should be answered with an HTML page rather than JSON."""
    if request.url.path.startswith(_MACHINE_PATHS):
        return False
    route = request.scope.get("route")
    if isinstance(route, APIRoute):
        return not route.include_in_schema
    return "text/html" in request.headers.get("accept", "")


def page_error_response(request: Request, error: OpsloopError) -> Response:
    """The HTML answer to an error on a page: the login page, or an error page."""
    if isinstance(error, Unauthenticated | PermissionDenied):
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
    return render(request, "login.html", {"next": _safe_next(next), "failed": False})


@_public.post("/login")
async def login(request: Request, state: State) -> Response:
    body = await request.body()
    form = parse_qs(body[:_MAX_FORM_BYTES].decode("utf-8", "replace"))
    token = form.get("token", [""])[0]
    target = _safe_next(form.get("next", ["/"])[0])
    expected = state.settings.token
    if expected and not token_matches(token, expected):
        return render(request, "login.html", {"next": target, "failed": True}, status_code=403)
    response = RedirectResponse(target, status_code=303)
    if expected:
        response.set_cookie(TOKEN_COOKIE, token.strip(), httponly=True, samesite="strict", path="/")
    return response


@_public.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return response


@_pages.get("/")
def home(request: Request) -> Response:
    domains: list[UiDomain] = request.app.state.ui_domains
    return RedirectResponse(domains[0].href if domains else "/docs", status_code=307)


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


def _safe_next(target: str) -> str:
    """Only same-site paths: never an absolute URL or ``//host`` (no open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _local_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")
