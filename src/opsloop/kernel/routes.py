"""REST paths written once. Each domain lists its paths in ``<domain>/routes.py`` as ``Route``s;
its router declares them (``@router.get(routes.MONITOR.template)``) and its remote backend calls
them (``transport.json("GET", routes.MONITOR.url(name=name))``), so a path cannot drift between
the server and the client.

A template is relative to where the application mounts the domain's router: ``/api`` for the
REST resources, the root for protocol endpoints (``/v1/...``, ``/metrics``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["API", "Route"]

API = "/api"
_PARAM = re.compile(r"\{(\w+)(?::path)?\}")


@dataclass(frozen=True)
class Route:
    """One path: ``template`` in FastAPI's syntax (``/monitors/{name}``, ``{path:path}``),
    mounted under ``mount``."""

    template: str
    mount: str = API

    def url(self, **params: object) -> str:
        """The path a client requests: the template filled in, each value percent-encoded
        but its slashes (names never hold one; a ``{key:path}`` takes them). A missing value is
        a ``KeyError``."""

        def fill(match: re.Match[str]) -> str:
            return quote(str(params[match.group(1)]), safe="/")

        return self.mount + _PARAM.sub(fill, self.template)
