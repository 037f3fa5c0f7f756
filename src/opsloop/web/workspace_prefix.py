"""``/w/NAME/...`` served as ``/...`` in workspace ``NAME``.

Some clients cannot send the ``X-Opsloop-Workspace`` header: the ``mlflow`` client takes only a
tracking URI. So a workspace can be named in the path's head instead
(``MLFLOW_TRACKING_URI=http://server/w/team-a``): this middleware, the app's outermost, moves it
into the header before anything else (the audit log, the auth check) sees the request.
"""

from __future__ import annotations

from typing import Any

__all__ = ["WorkspacePrefix"]

_PREFIX = "/w/"
_HEADER = b"x-opsloop-workspace"


class WorkspacePrefix:
    """ASGI middleware: ``/w/NAME/rest`` → ``/rest`` with the workspace header set to ``NAME``
    (a malformed name is then refused as any malformed header is, 400)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(_PREFIX):
            name, _, rest = scope["path"].removeprefix(_PREFIX).partition("/")
            raw = scope.get("raw_path") or scope["path"].encode()
            scope = {
                **scope,
                "path": "/" + rest,
                "raw_path": raw[len(_PREFIX) + len(name.encode()) :] or b"/",
                "headers": [
                    *((k, v) for k, v in scope.get("headers", ()) if k != _HEADER),
                    (_HEADER, name.encode()),
                ],
            }
        await self.app(scope, receive, send)
