"""Hot routes answered before FastAPI's routing: one ASGI middleware.

FastAPI serves every route of the app, and documents them; but for a route whose own work is
small and whose calls are many (the gateway's completions, MLflow's one ``log-metric`` request
per point), the framework's layers outside the handler (its exception and exit-stack
middlewares, matching the path against every route, twice since FastAPI 0.16x, solving the
dependencies, wrapping the handler) cost as much CPU as the route's own work, or more.
:class:`RouteDispatch` sits inside the app's middlewares, so whatever they do to a request still
happens (the server's workspace prefix, request id and audit check, body limit), and answers a
request for one of its routes itself: the includer's auth check, then the route's endpoint,
their errors in the routes' own shape (``answer``), exactly as the route would. It puts the
route in the request's scope as routing would (the server's role check and audit log look it
up there). Anything else, another method on those paths included, goes on to FastAPI, as does
everything when a route's endpoint or the check takes more than the request (app-level
``dependency_overrides`` do not apply to the routes it answers).
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

__all__ = ["Answer", "Check", "Handler", "RouteDispatch"]

Check = Callable[[Request], Awaitable[None]]
Handler = Callable[[Request], Awaitable[Response]]
# How a family of routes answers: the handler's response, or its error in the family's shape.
Answer = Callable[[Handler, Request], Awaitable[Response]]


class RouteDispatch:
    """ASGI middleware: requests for ``routes`` (as included on the app under ``prefix``)
    answered by ``check`` then the route's endpoint, each called with the request alone,
    through ``answer``; the rest passed to ``app``.

    Args:
        app: The rest of the app (FastAPI's middlewares and router).
        routes: The routes (their endpoints take the request alone).
        check: The auth check the routes are included behind (their one dependency).
        answer: The response, or the error in the routes' shape (OpenAI's, MLflow's).
        prefix: The prefix the routes are included under.
    """

    def __init__(
        self, app: Any, *, routes: Sequence[BaseRoute], check: Check, answer: Answer,
        prefix: str = "",
    ) -> None:  # fmt: skip
        self.app = app
        self.answer = answer
        self.routes = {
            (method, prefix + route.path): (route, _checked(check, route.endpoint))
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
        response = await self.answer(handler, Request(scope, receive, send))
        await response(scope, receive, send)


def _checked(check: Check, endpoint: Callable[[Request], Awaitable[Response]]) -> Handler:
    async def handler(request: Request) -> Response:
        await check(request)
        return await endpoint(request)

    return handler
