"""The gateway's three endpoints answered before FastAPI's routing: one ASGI middleware.

FastAPI serves the gateway's routes (:func:`~opsloop.llm.gateway.api.gateway_router`) like any
other, and documents them; but on a gateway the framework's layers outside the handler (its
exception and exit-stack middlewares, matching the path against every route, twice since
FastAPI 0.16x, and wrapping the handler) cost about as much CPU as the gateway's own work on a
request. :class:`GatewayDispatch` sits inside the app's middlewares, so whatever they do to a
request still happens (the server's workspace prefix, request id and audit check, body limit),
and answers a request for one of the routes itself: the includer's auth check, then the route's
endpoint, their errors in OpenAI's shape, exactly as the route would. It puts the route in the
request's scope as routing would (the server's role check and audit log look it up there).
Anything else, another method on those paths included, goes on to FastAPI.
"""

from __future__ import annotations

from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi import Response
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.routing import get_route_path

from opsloop.llm.gateway.api import answered

__all__ = ["Check", "GatewayDispatch"]

Check = Callable[[Request], Awaitable[None]]
Handler = Callable[[Request], Awaitable[Response]]


class GatewayDispatch:
    """ASGI middleware: requests for ``routes`` (as included on the app, without a prefix)
    answered by ``check`` then the route's endpoint, each called with the request alone; the
    rest passed to ``app``.

    Args:
        app: The rest of the app (FastAPI's middlewares and router).
        routes: The gateway router's routes (their endpoints take the request alone).
        check: The auth check the router is included behind (its one dependency).
    """

    def __init__(self, app: Any, *, routes: Sequence[BaseRoute], check: Check) -> None:
        self.app = app
        self.routes = {
            (method, route.path): (route, _checked(check, route.endpoint))
            for route in routes
            if isinstance(route, APIRoute)
            for method in route.methods
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        found = None
        if scope["type"] == "http":
            found = self.routes.get((scope["method"], get_route_path(scope)))
        if found is None:
            await self.app(scope, receive, send)
            return
        route, handler = found
        scope["route"], scope["endpoint"], scope["path_params"] = route, route.endpoint, {}
        response = await answered(handler, Request(scope, receive, send))
        await response(scope, receive, send)


def _checked(check: Check, endpoint: Callable[[Request], Awaitable[Response]]) -> Handler:
    async def handler(request: Request) -> Response:
        await check(request)
        return await endpoint(request)

    return handler
