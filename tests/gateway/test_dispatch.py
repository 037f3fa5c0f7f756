"""The dispatcher answers the gateway's routes as FastAPI's routes answer them (status, body,
headers, the auth check's errors in OpenAI's shape, the route in the request's scope, where the
server's role check and audit log look it up) without reaching the app behind it, and passes
everything else on to the app."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import Depends
from fastapi import FastAPI
from fastapi import Request
from fastapi.routing import iter_route_contexts

from opsloop.errors import Unauthenticated
from opsloop.llm.gateway.api import answered as openai_answer
from opsloop.llm.gateway.api import gateway_router
from opsloop.llm.gateway.config import parse_config
from opsloop.llm.gateway.ports import Caller
from opsloop.web.dispatch import RouteDispatch


def _apps() -> tuple[FastAPI, Any, list[str], list[Any]]:
    """FastAPI serving the router behind a key check, the same app behind the dispatcher, the
    paths that reached the FastAPI app through the dispatcher, and the routes the check saw."""
    from opsloop.app.gateway import build_gateway

    config = parse_config({"routes": [{"name": "m", "targets": [{"name": "t", "model": "x",
                                       "base_url": "http://127.0.0.1:9/v1"}]}]})  # fmt: skip
    gateway = build_gateway(config)
    seen: list[Any] = []

    async def check(request: Request) -> None:
        seen.append(request.scope.get("route"))
        if request.headers.get("authorization") != "Bearer good":
            raise Unauthenticated("send 'Authorization: Bearer <key>'")

    async def caller_of(_request: Request) -> Caller:
        return Caller(key_id="k")

    router = gateway_router(lambda _request: gateway, caller_of)
    app = FastAPI()
    app.include_router(router, dependencies=[Depends(check)])
    reached: list[str] = []

    async def behind(scope: dict[str, Any], receive: Any, send: Any) -> None:
        reached.append(f"{scope['method']} {scope['path']}")
        await app(scope, receive, send)

    return (
        app,
        RouteDispatch(behind, routes=router.routes, check=check, answer=openai_answer),
        reached,
        seen,
    )


_GOOD = {"authorization": "Bearer good"}
_ASKED = [
    ("GET", "/v1/models", _GOOD, None),
    ("GET", "/v1/models", {"authorization": "Bearer bad"}, None),
    ("POST", "/v1/chat/completions", _GOOD, b'{"model": "nope", "messages": [{"role": "user"}]}'),
    ("POST", "/v1/chat/completions", _GOOD, b"{not json"),
    ("POST", "/v1/chat/completions", {}, b'{"model": "m"}'),
    ("POST", "/v1/embeddings", _GOOD, b'{"model": "nope", "input": "x"}'),
]


async def _ask(app: Any, method: str, path: str, headers: dict[str, str], body: Any) -> Any:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        return await client.request(method, path, headers=headers, content=body)


def test_the_dispatcher_answers_the_routes_as_the_routes_do() -> None:
    app, dispatched, reached, seen = _apps()

    async def both() -> list[tuple[httpx.Response, httpx.Response]]:
        return [(await _ask(app, *asked), await _ask(dispatched, *asked)) for asked in _ASKED]

    answers = asyncio.run(both())
    for (method, path, _, _), (routed, answered) in zip(_ASKED, answers, strict=True):
        assert answered.status_code == routed.status_code, (method, path)
        assert answered.content == routed.content
        assert answered.headers == routed.headers
    assert [routed.status_code for routed, _ in answers] == [200, 401, 404, 400, 401, 404]
    assert reached == []  # none went through FastAPI
    assert seen[0::2] == seen[1::2]  # the check saw the same route objects in the scope
    routed = {id(c.original_route): c.path_format for c in iter_route_contexts(app.routes)}
    assert [routed[id(route)] for route in seen[1::2]] == [path for _, path, _, _ in _ASKED]


def test_anything_else_goes_on_to_the_app() -> None:
    _, dispatched, reached, _ = _apps()
    other = asyncio.run(_ask(dispatched, "GET", "/v1/chat/completions", _GOOD, None))
    assert other.status_code == 405  # FastAPI's answer to a method the path does not take
    schema = asyncio.run(_ask(dispatched, "GET", "/openapi.json", {}, None)).json()
    assert {"/v1/chat/completions", "/v1/embeddings", "/v1/models"} <= set(schema["paths"])
    assert reached == ["GET /v1/chat/completions", "GET /openapi.json"]
