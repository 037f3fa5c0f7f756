"""The web UI shell: one Jinja2 environment, the navigation, and page rendering.

Server-rendered pages with a little plain JavaScript were chosen over a built single-page app:
there is no front-end toolchain to install, pin or audit, every page is a deep link that works
with JavaScript off, the templates read the same services as the REST API, and each domain
keeps its pages next to its code (``<domain>/views.py``, ``<domain>/templates/<domain>/``,
``<domain>/static/``). JavaScript only draws charts, polls running runs and toggles views.

Every page is sent with a strict Content-Security-Policy (no inline script, no third-party
origin), so even a string that escaped escaping could not run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader
from jinja2 import Environment
from jinja2 import PackageLoader
from jinja2 import select_autoescape
from sqlalchemy.orm import Session

from opsloop.config import DEFAULT_WORKSPACE
from opsloop.errors import OpsloopError
from opsloop.kernel import __version__
from opsloop.web.deps import WORKSPACE_COOKIE
from opsloop.web.deps import request_workspace

__all__ = ["CSP", "SearchHit", "UiDomain", "build_environment", "render", "security_headers"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class SearchHit:
    """One answer of the global search box."""

    kind: str
    title: str
    href: str
    detail: str = ""


@dataclass(frozen=True)
class UiDomain:
    """What a domain adds to the UI: a nav entry, its templates and static files, its search.

    ``package`` holds ``templates/<key>/*.html`` and optionally ``static/`` (served at
    ``{{ static }}/<key>/``; its modules import the shell's as ``../shell/charts.js``).
    ``find`` answers the global search box from a read session.
    """

    key: str
    title: str
    href: str
    package: str
    find: Callable[[Session, str], Sequence[SearchHit]] | None = None
    admin_only: bool = False  # in users mode the nav shows it to admins only

    def page(
        self, request: Request, template: str, title: str, *, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        """Render the domain's page ``templates/<key>/<template>`` titled ``title``, with the
        domain's nav entry shown as the active one."""
        context = {"title": title, "active": self.key, **context}
        return render(request, f"{self.key}/{template}", context, status_code)

    def subpage(
        self, request: Request, template: str, title: str, *trail: tuple[str, str], **context: Any
    ) -> HTMLResponse:
        """A page below the domain's top page (:meth:`page`): its breadcrumbs lead from that
        page through ``trail``, the ``(label, href)`` of each page between."""
        crumbs = [(self.title, self.href), *trail]
        return self.page(request, template, title, crumbs=crumbs, **context)


def security_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }


def build_environment(domains: Sequence[UiDomain], static: str) -> Environment:
    """The Jinja2 environment: the shell's templates first, then each domain's.

    ``static`` is the URL prefix of the static files (``{{ static }}/<domain>/file.js``).
    """
    loaders = [PackageLoader("opsloop.web", "templates")]
    loaders += [PackageLoader(d.package, "templates") for d in domains]
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # The layout's own globals carry names no page passes in its context (a page's ``version``
    # would shadow a global ``version`` and print a data or model version in the footer).
    env.globals.update(nav=list(domains), opsloop_version=__version__, static=static)
    env.filters.update(
        when=format_time, duration=format_duration, num=format_number, size=format_size
    )
    return env


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """Render a page of the shell or of a domain with the request in its context, and the
    workspace it shows with the ones the caller may switch to. A page opened with
    ``?workspace=NAME`` keeps that choice for the next pages (a cookie), so its links stay in
    that workspace."""
    env: Environment = request.app.state.ui_env
    workspace, choices = _workspaces(request)
    html = env.get_template(template).render(
        request=request, workspace=workspace, workspaces=choices, **context
    )
    response = HTMLResponse(html, status_code=status_code, headers=security_headers())
    if request.query_params.get("workspace") == workspace and status_code < 400:
        response.set_cookie(WORKSPACE_COOKIE, workspace, httponly=True, samesite="strict")
    return response


def _workspaces(request: Request) -> tuple[str, list[str]]:
    """The page's workspace, and every workspace the caller has a role in (all of them on a
    server without users); no choices when there is only ``default``."""
    try:
        workspace = request_workspace(request)
    except OpsloopError:
        return DEFAULT_WORKSPACE, []
    root = getattr(request.app.state, "opsloop", None)
    if root is None or root.workspaces is None:
        return workspace, []
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        names = sorted({DEFAULT_WORKSPACE, *(name for name, _ in principal.roles)})
    else:
        names = root.workspaces.names()
    return workspace, names if len(names) > 1 else []


def format_time(ms: int | None) -> str:
    """Epoch milliseconds as a UTC timestamp to the second."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(start_ms: int | None, end_ms: int | None) -> str:
    """``1h 02m``, ``3m 04s``, ``5.2s``; empty while either end is unknown."""
    if start_ms is None or end_ms is None:
        return ""
    seconds = max(0.0, (end_ms - start_ms) / 1000)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_number(value: float | None) -> str:
    """Up to six significant digits; integers without a decimal point."""
    if value is None:
        return ""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def format_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"
