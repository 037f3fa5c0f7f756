"""The OpenAI-compatible endpoints: ``POST /v1/chat/completions``, ``POST /v1/embeddings``,
``GET /v1/models``.

Every error these routes answer, including the auth check's (which runs as the router's
dependency, inside the route), has OpenAI's shape, ``{"error": {"message", "type", "param",
"code"}}``, so any OpenAI client reports it as it would OpenAI's own: an unknown model is a
404 ``model_not_found``, a malformed body a 400, a key over its limits a 429 with
``Retry-After``, and no target answering a 502. The bodies are read as bytes and parsed once
by the proxy (no request model): the gateway passes through fields it does not know. Both
apps answer these routes with :class:`~opsloop.web.dispatch.RouteDispatch` before
FastAPI's routing: the same check and endpoints, and :func:`answered` for the errors.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any

import fastapi.routing
from fastapi import APIRouter
from fastapi import Request
from fastapi import Response
from fastapi.dependencies.models import Dependant
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute

from opsloop.errors import OpsloopError
from opsloop.errors import RateLimited
from opsloop.llm.gateway.ports import Caller
from opsloop.llm.gateway.proxy import Answer
from opsloop.llm.gateway.proxy import Gateway
from opsloop.llm.gateway.upstream import ClientError
from opsloop.web.openapi import error_response

__all__ = ["CHAT", "EMBEDDINGS", "MODELS", "answered", "gateway_router", "openai_error"]

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
MODELS = "/v1/models"

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
}
_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded",
          502: "upstream_failed"}  # fmt: skip
_DOCUMENTED: dict[int | str, dict[str, Any]] = {
    400: error_response("A malformed body, or a guardrail blocked the request"),
    404: error_response("No route of that model name (code model_not_found)"),
    429: error_response("The key is over its limits or budget (Retry-After says when to retry)"),
    502: error_response("No target of the route (nor a fallback) answered"),
}


def openai_error(exc: OpsloopError) -> Response:
    """``exc`` as OpenAI's error body, with its status (and ``Retry-After`` for a 429)."""
    status = exc.http_status
    details = exc.details or {}
    error = {
        "message": exc.message,
        "type": _TYPES.get(status, "api_error"),
        "param": details.get("param"),
        "code": details.get("code") or _CODES.get(status) or exc.code.lower(),
    }
    response = _json({"error": error}, status)
    retry = details.get("retry_after_s", getattr(exc, "retry_after", None))
    if isinstance(exc, RateLimited) or retry is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(float(retry or 1))))
    return response


async def answered(handler: Callable[[Request], Awaitable[Response]], request: Request) -> Response:
    """``handler``'s response to ``request``, or its error in OpenAI's shape (an upstream's
    refusal of the request itself as the upstream sent it)."""
    try:
        return await handler(request)
    except OpsloopError as exc:
        return openai_error(exc)
    except ClientError as exc:
        return Response(exc.content, status_code=exc.status, media_type="application/json")


def _json(data: Any, status: int) -> Response:
    return Response(json.dumps(data).encode(), status_code=status, media_type="application/json")


class _OpenAIErrors(APIRoute):
    """A route whose errors (its dependencies' too) are answered in OpenAI's shape.

    When the route and each of its dependencies take nothing but the request (the standalone
    gateway's key check does), they are called directly: the same functions in the same order,
    without FastAPI's per-request dependency solving, which cost more CPU than the rest of the
    gateway's own work on a request (app-level ``dependency_overrides`` do not apply to them).
    Any other dependency (the server's ``require_token`` needs the app's state) goes through
    FastAPI as usual.
    """

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = _direct(_effective(self).dependant) or super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await answered(handler, request)

        return handle


def _effective(route: APIRoute) -> Any:
    """The route as FastAPI builds its handler: since FastAPI 0.16x the dependencies an
    includer adds (the auth check) live in the inclusion's context, not on the route, and
    :meth:`APIRoute.get_route_handler` reads them from this context variable. (The tests of
    both auth modes fail should that change again: a handler without the check lets a wrong
    key through.)"""
    context = getattr(fastapi.routing, "_effective_route_context_var", None)
    found = context.get() if context is not None else None
    return found if found is not None and found.original_route is route else route


def _direct(dependant: Dependant) -> Callable[[Request], Awaitable[Response]] | None:
    """The route's handler calling its dependencies and endpoint with the request alone, or
    None when any of them asks for more (parameters, a body, state, a ``yield``)."""
    checks = []
    for dependency in dependant.dependencies:
        if dependency.dependencies or not _request_only(dependency):
            return None
        checks.append((dependency.call, dependency.request_param_name))
    if not _request_only(dependant):
        return None
    endpoint, name = dependant.call, dependant.request_param_name

    async def handler(request: Request) -> Response:
        for check, param in checks:
            await check(**{param: request}) if param else await check()
        return await (endpoint(**{name: request}) if name else endpoint())

    return handler


def _request_only(dependant: Dependant) -> bool:
    """A coroutine function whose parameters are at most the request (its own dependencies
    aside)."""
    return inspect.iscoroutinefunction(dependant.call) and not (
        dependant.path_params or dependant.query_params or dependant.header_params
        or dependant.cookie_params or dependant.body_params
        or dependant.response_param_name or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name or dependant.http_connection_param_name
        or dependant.websocket_param_name
    )  # fmt: skip


def _send(answer: Answer) -> Response:
    if answer.stream is not None:
        headers = {"cache-control": "no-cache", **answer.headers}
        return StreamingResponse(answer.stream, media_type="text/event-stream", headers=headers)
    return Response(
        answer.content, status_code=answer.status, media_type="application/json",
        headers=answer.headers,
    )  # fmt: skip


def gateway_router(
    gateway_of: Callable[[Request], Gateway], caller_of: Callable[[Request], Awaitable[Caller]]
) -> APIRouter:
    """The three routes; ``gateway_of`` picks the gateway serving a request (the server has one
    per workspace, each with that workspace's routes, the standalone gateway one), and
    ``caller_of`` says who sent it once the includer's auth dependency has run (the server's
    ``require_token``, or the standalone gateway's own)."""
    router = APIRouter(tags=["gateway"], route_class=_OpenAIErrors, responses=_DOCUMENTED)

    @router.post(CHAT, summary="OpenAI-compatible chat completions (streaming or not)")
    async def chat_completions(request: Request) -> Response:
        """An OpenAI chat request; ``model`` names a route. Tools, ``response_format`` and
        other fields pass through. ``prompt`` (``NAME@LABEL``) with ``variables`` sends a
        registered prompt's messages instead of (or before) ``messages``."""
        caller = await caller_of(request)
        raw = await request.body()
        answer = await gateway_of(request).chat(caller, raw, request.headers.get("traceparent"))
        return _send(answer)

    @router.post(EMBEDDINGS, summary="OpenAI-compatible embeddings")
    async def embeddings(request: Request) -> Response:
        caller = await caller_of(request)
        raw = await request.body()
        gateway = gateway_of(request)
        return _send(await gateway.embeddings(caller, raw, request.headers.get("traceparent")))

    @router.get(MODELS, summary="The routes clients may name as model")
    async def models(request: Request) -> Response:
        return Response(gateway_of(request).models_json, media_type="application/json")

    return router
