"""Cross-site request forgery: what a browser-driven write must show besides its cookie.

``SameSite=Strict`` keeps the cookie off requests from other *sites*, but a page on another
port or subdomain of the same host is the same site, and its forms would still write with the
cookie. So every unsafe request (POST, PUT, PATCH, DELETE) that a browser could have sent for
someone else is checked twice:

1. :func:`check_origin` — the browser's own word on where the request comes from:
   ``Sec-Fetch-Site`` must not be ``cross-site`` or ``same-site``, and ``Origin`` (when sent;
   browsers send it on every cross-origin write) must be this server's scheme, host and port.
   A request with neither header is not a browser's cross-origin write.
2. :func:`check_token` — the session's CSRF token, from the form's hidden ``csrf_token`` field
   (every form the UI renders has one, ``_csrf.html``) or an ``X-CSRF-Token`` header (scripts;
   base.html publishes it in ``<meta name="csrf-token">``).

Requests with a bearer token are neither: a page on another origin cannot set
``Authorization`` without a CORS preflight, which this server never grants. Behind a reverse
proxy, pass the ``Host`` header through and set ``X-Forwarded-Proto``, so that the server knows
the origin browsers see.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs
from urllib.parse import urlsplit

from fastapi import Request

from opsloop.errors import OpsloopError

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "UNSAFE_METHODS",
    "CsrfRejected",
    "check_origin",
    "check_token",
    "form_field",
    "own_origin",
]

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_FORM = "application/x-www-form-urlencoded"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class CsrfRejected(OpsloopError):
    """A browser write that may come from another origin, or a form without its CSRF token.

    Shown as a 403 page, not the sign-in redirect: the caller is signed in, the request is not
    trusted."""

    code = "CSRF_REJECTED"
    http_status = 403
    exit_code = 6


def _origin_of(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def own_origin(request: Request) -> str:
    """This server's origin as the browser addressed it (scheme, ``Host``)."""
    return f"{request.url.scheme}://{request.url.netloc}"


def check_origin(request: Request) -> None:
    """Refuse (403) a request that a browser says comes from another site or origin."""
    fetch_site = request.headers.get("sec-fetch-site", "").lower()
    if fetch_site in ("cross-site", "same-site"):
        raise CsrfRejected(
            f"refused a {request.method} sent from another site (Sec-Fetch-Site: {fetch_site}): "
            "this server takes writes from its own pages only"
        )
    origin = request.headers.get("origin")
    if origin is None:
        return
    own = own_origin(request)
    if _origin_of(origin) is None or _origin_of(origin) != _origin_of(own):
        raise CsrfRejected(
            f"refused a {request.method} sent from {origin[:100]!r}, not from this server's "
            f"origin {own!r}: this server takes writes from its own pages only"
        )


async def check_token(request: Request, expected: str) -> None:
    """Refuse (403) a write whose CSRF token (form field or header) is not ``expected``."""
    given = request.headers.get(CSRF_HEADER, "")
    if not given and _is_form(request):
        given = await form_field(request, CSRF_FIELD)
    if not given:
        raise CsrfRejected(
            "this form has no CSRF token: reload the page and submit it again "
            f"(scripts send the page's csrf-token as {CSRF_HEADER.title()})"
        )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfRejected(
            "this form's CSRF token is not the one of your session (it was signed out or "
            "signed in again): reload the page and submit it again"
        )


async def form_field(request: Request, name: str) -> str:
    """One field of an url-encoded form body ("" when absent). The body stays readable: the
    route's own ``await request.body()`` gets it again from the request."""
    body = await request.body()
    return parse_qs(body.decode("utf-8", "replace")).get(name, [""])[0]


def _is_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return content_type.split(";")[0].strip().lower() == _FORM
