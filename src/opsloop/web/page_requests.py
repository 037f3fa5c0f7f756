"""Whether a request is a page's (answered in HTML) or a machine's (answered in JSON).

Apart from :mod:`opsloop.web.routes` so that the error handlers every app installs can ask
without importing the web UI (its templates, jinja2): ``opsloop serve`` answers no pages, and
its start is measured in tenths of a second.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.routing import APIRoute

__all__ = ["is_page_request"]

_MACHINE_PATHS = (
    "/api/",
    "/v1/",
    "/static/",
    "/healthz",
    "/readyz",
    "/docs",
    "/openapi.json",
    "/metrics",
)


def is_page_request(request: Request) -> bool:
    """Whether an error should be answered with an HTML page rather than JSON."""
    if request.url.path.startswith(_MACHINE_PATHS):
        return False
    route = request.scope.get("route")
    if isinstance(route, APIRoute):
        return not route.include_in_schema
    return "text/html" in request.headers.get("accept", "")
