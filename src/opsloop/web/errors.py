"""How a router's errors reach the caller: an ``OpsloopError`` as JSON with its HTTP status for
the API, or as an HTML page for the web UI; a request that fails validation as a 400 that says
which field broke which rule. Installed once on every app (the server, a standalone serving
process), so an error has one shape wherever it comes from."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import OpsloopError
from opsloop.web.page_requests import is_page_request
from opsloop.web.throttle import TooManyFailures

__all__ = ["install_error_handlers"]


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {error.get('msg')}")
    return "invalid request: " + "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Map ``OpsloopError`` to HTTP (JSON for the API, an HTML page for the web UI)."""

    @app.exception_handler(OpsloopError)
    async def _opsloop_error(request: Request, exc: OpsloopError) -> Response:
        return _error_response(request, exc)

    @app.exception_handler(TooManyFailures)
    async def _too_many_failures(request: Request, exc: TooManyFailures) -> Response:
        response = _error_response(request, exc)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        error = InvalidInput(_validation_message(exc), details={"errors": _jsonable(exc.errors())})
        return _error_response(request, error)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and is_page_request(request):
            return _page(request, NotFound(f"there is no page at {request.url.path}"))
        return await http_exception_handler(request, exc)


def _error_response(request: Request, error: OpsloopError) -> Response:
    if is_page_request(request):
        return _page(request, error)
    return JSONResponse(error.to_dict(), status_code=error.http_status)


def _page(request: Request, error: OpsloopError) -> Response:
    """The error page; the web UI (jinja2, its templates) is imported by the first one, so an
    app that serves no pages (``opsloop serve``) never loads it."""
    from opsloop.web.routes import page_error_response

    return page_error_response(request, error)


def _jsonable(errors: Any) -> Any:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(errors, custom_encoder={Exception: str})
