"""What every MLflow-compatible router shares: its prefixes, MLflow's error shape, the catch-all.

MLflow's client (``MLFLOW_TRACKING_URI=http://opsloop-server``) calls
``/api/2.0/mlflow/<endpoint>`` (the web UI uses ``/ajax-api/2.0/mlflow/...``) and the proxied
artifact API ``/api/2.0/mlflow-artifacts/artifacts/<path>``. It reads failures as
``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "..."}`` and raises ``MlflowException``
with that code, so a script's ``except`` keeps working. How to use it, from a domain router:

- write paths relative to the prefix (``/experiments/create``, ``/registered-models/get``) and
  mount the router with :func:`include_mlflow_router` (under :data:`MLFLOW_API`, with the same
  dependencies as any route: the auth check applies; in users mode the role rules of
  ``governance.policy`` decide per full path). The ``/ajax-api/2.0/...`` twins are not routes
  of their own: :func:`install_mlflow` rewrites them to ``/api/2.0/...`` before routing, so each
  endpoint has one route, one template and one role rule;
- raise ``OpsloopError`` as anywhere else: under the MLflow paths it is answered in MLflow's
  shape (``InvalidInput`` → ``INVALID_PARAMETER_VALUE``, ``NotFound`` →
  ``RESOURCE_DOES_NOT_EXIST``, ``Conflict`` → ``RESOURCE_ALREADY_EXISTS`` …, see
  :data:`ERROR_CODES`); when MLflow names a case differently, pass the code explicitly:
  ``raise Conflict(msg, details={MLFLOW_CODE: "INVALID_PARAMETER_VALUE"})``, or around a
  service call ``with answered_as("INVALID_PARAMETER_VALUE", Conflict): ...``;
- a router whose every endpoint takes the request alone and is called the most (the logging
  routes) may also be answered before FastAPI's routing (:func:`dispatch_mlflow_routes`): the
  same auth check and endpoints, errors in the same shape, at a fraction of the framework's CPU;
- the app calls :func:`install_mlflow` once, after every MLflow router is included: it answers
  any other path under the prefixes ``ENDPOINT_NOT_FOUND`` (404) naming the endpoint, never a
  silent success, and puts MLflow's error shape on those paths.

Everywhere else the app's own error shape (``web.errors``) is untouched.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from contextlib import suppress
from typing import Any
from typing import NoReturn
from typing import TypeVar

from fastapi import APIRouter
from fastapi import FastAPI
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends
from fastapi.responses import JSONResponse
from fastapi.responses import Response
from pydantic import BaseModel
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import OpsloopError
from opsloop.errors import PayloadTooLarge
from opsloop.errors import PermissionDenied
from opsloop.errors import RateLimited
from opsloop.errors import StoreError
from opsloop.errors import Unauthenticated
from opsloop.errors import UpstreamFailed
from opsloop.web.dispatch import Check
from opsloop.web.dispatch import Handler as DispatchHandler
from opsloop.web.dispatch import RouteDispatch
from opsloop.web.throttle import TooManyFailures

__all__ = [
    "ARTIFACTS_API",
    "ARTIFACT_PREFIXES",
    "ERROR_CODES",
    "MLFLOW_API",
    "MLFLOW_CODE",
    "MLFLOW_PREFIXES",
    "answered_as",
    "dispatch_mlflow_routes",
    "include_mlflow_router",
    "install_mlflow",
    "is_mlflow_path",
    "mlflow_body",
    "mlflow_error_body",
]

MLFLOW_API = "/api/2.0/mlflow"  # the REST API (tracking, registry): where routers are mounted
ARTIFACTS_API = "/api/2.0/mlflow-artifacts"  # the artifact proxy
_AJAX, _API = "/ajax-api/2.0/", "/api/2.0/"  # the web UI's alias of the same endpoints
MLFLOW_PREFIXES = (MLFLOW_API, MLFLOW_API.replace(_API, _AJAX))
ARTIFACT_PREFIXES = (ARTIFACTS_API, ARTIFACTS_API.replace(_API, _AJAX))
MLFLOW_CODE = "mlflow_error_code"  # a details key naming the MLflow code to answer with

# MLflow's code and HTTP status (mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS) per opsloop error.
ERROR_CODES: dict[type[OpsloopError], str] = {
    InvalidInput: "INVALID_PARAMETER_VALUE",
    NotFound: "RESOURCE_DOES_NOT_EXIST",
    Conflict: "RESOURCE_ALREADY_EXISTS",
    Unauthenticated: "UNAUTHENTICATED",
    PermissionDenied: "PERMISSION_DENIED",
    StoreError: "TEMPORARILY_UNAVAILABLE",
    PayloadTooLarge: "INVALID_PARAMETER_VALUE",
    RateLimited: "REQUEST_LIMIT_EXCEEDED",
    TooManyFailures: "REQUEST_LIMIT_EXCEEDED",
    UpstreamFailed: "TEMPORARILY_UNAVAILABLE",
}
_HTTP_STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_CONFLICT": 409,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "TEMPORARILY_UNAVAILABLE": 503,
    "INTERNAL_ERROR": 500,
}
_CODE_BY_STATUS = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                   404: "RESOURCE_DOES_NOT_EXIST", 409: "RESOURCE_CONFLICT",
                   429: "REQUEST_LIMIT_EXCEEDED", 503: "TEMPORARILY_UNAVAILABLE"}  # fmt: skip
# MLflow's (and Databricks') REST families, 2.0 and MLflow 3's 3.0 (traces, scorers…), and the
# web UI's alias of each: opsloop's own API has no such path
_API_3, _AJAX_3 = "/api/3.0/", "/ajax-api/3.0/"
_ALL_PREFIXES = (_API, _AJAX, _API_3, _AJAX_3)
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

Handler = Callable[[Request, Any], Awaitable[Response]]
Body = TypeVar("Body", bound=BaseModel)


def is_mlflow_path(path: str) -> bool:
    """Whether ``path`` is under ``/api/2.0/`` or ``/ajax-api/2.0/`` (its errors take MLflow's
    shape)."""
    return path.startswith(_ALL_PREFIXES)


def mlflow_error_body(error: OpsloopError) -> tuple[dict[str, str], int]:
    """MLflow's error JSON for ``error`` and the HTTP status MLflow gives its code."""
    code = error.details.get(MLFLOW_CODE)
    if not isinstance(code, str):  # the most specific class that has a code
        found = (ERROR_CODES.get(cls) for cls in type(error).__mro__)
        code = next((name for name in found if name), None)
    if code is None:  # an error of the app's own (a refused cross-site write…): its status kept
        status = error.http_status
        return {
            "error_code": _CODE_BY_STATUS.get(status, "INTERNAL_ERROR"),
            "message": error.message,
        }, status
    return {"error_code": code, "message": error.message}, _HTTP_STATUS.get(code, 500)


@contextmanager
def answered_as(code: str, *errors: type[OpsloopError]) -> Iterator[None]:
    """Answer ``errors`` raised inside with MLflow's ``code`` (where MLflow's server names a
    case otherwise than opsloop's class does: a changed param is its INVALID_PARAMETER_VALUE,
    opsloop's ``Conflict``)."""
    try:
        yield
    except errors as exc:
        exc.details = {**exc.details, MLFLOW_CODE: code}
        raise


def _mlflow_response(error: OpsloopError) -> JSONResponse:
    body, status = mlflow_error_body(error)
    response = JSONResponse(body, status_code=status)
    if isinstance(error, TooManyFailures):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def include_mlflow_router(
    app: FastAPI, router: APIRouter, dependencies: Sequence[Depends], *, artifacts: bool = False
) -> None:
    """Mount ``router`` under :data:`MLFLOW_API` (``artifacts``: :data:`ARTIFACTS_API`); the
    ajax-api alias reaches it too once :func:`install_mlflow` ran. Left out of opsloop's own
    OpenAPI document: MLflow's REST API is MLflow's, documented by MLflow, errors in its shape."""
    prefix = ARTIFACTS_API if artifacts else MLFLOW_API
    app.include_router(router, prefix=prefix, dependencies=dependencies, include_in_schema=False)


def dispatch_mlflow_routes(app: FastAPI, router: APIRouter, check: Check) -> None:
    """``router`` mounted as :func:`include_mlflow_router` mounts it, behind ``check`` (the
    auth check, taking the request alone, as each of its endpoints does), and answered first
    by a :class:`~opsloop.web.dispatch.RouteDispatch`: MLflow's client sends one request per
    logged point, and FastAPI's layers around such a route cost more CPU than the route. Call
    before :func:`install_mlflow`, whose ``/ajax-api`` rewrite then reaches it."""
    include_mlflow_router(app, router, [Depends(check)])
    app.add_middleware(
        RouteDispatch, routes=router.routes, check=check, answer=_answer, prefix=MLFLOW_API
    )


async def _answer(handler: DispatchHandler, request: Request) -> Response:
    """``handler``'s response, or its error in MLflow's shape, as :func:`install_mlflow`'s
    handlers answer it on the MLflow paths."""
    try:
        return await handler(request)
    except OpsloopError as exc:  # TooManyFailures among them, with its Retry-After
        return _mlflow_response(exc)


def install_mlflow(app: FastAPI, dependencies: Sequence[Depends]) -> None:
    """MLflow's error shape on the MLflow paths, and ``ENDPOINT_NOT_FOUND`` for any path there
    no router answers (behind ``dependencies``, the auth check: every route of the app is
    guarded). Call after ``web.errors.install_error_handlers`` and after the last MLflow router
    is included (routes match in order: the catch-all must come last)."""
    for cls in (OpsloopError, TooManyFailures):
        _wrap(app, cls, lambda _request, exc: _mlflow_response(exc))
    _wrap(app, RequestValidationError, _validation_error)
    _wrap(app, StarletteHTTPException, _http_error)
    fallback = APIRouter(include_in_schema=False)

    async def endpoint_not_found(request: Request, api: str, endpoint: str) -> Response:
        version = request.url.path.removeprefix("/api/").split("/", 1)[0]
        raise NotFound(
            f"the MLflow endpoint {request.method} {version}/{api}/{endpoint} is not supported "
            "by opsloop",
            details={MLFLOW_CODE: "ENDPOINT_NOT_FOUND"},
        )

    for family in (_API, _API_3):  # one route a family: one role rule
        fallback.add_api_route(family + "{api}/{endpoint:path}", endpoint_not_found,
                               methods=_METHODS)  # fmt: skip

    app.include_router(fallback, dependencies=dependencies)
    app.add_middleware(_AjaxAlias)


class _AjaxAlias:
    """Serves ``/ajax-api/2.0/...`` as ``/api/2.0/...``, and 3.0 alike (MLflow's web UI calls
    the former)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith((_AJAX, _AJAX_3)):
            path = "/api/" + scope["path"].removeprefix("/ajax-api/")
            raw = scope.get("raw_path") or scope["path"].encode()
            # In place, not a copy: the middlewares around this one (the audit log) must see the
            # route the request matches.
            scope["path"], scope["raw_path"] = path, b"/api/" + raw[len("/ajax-api/") :]
        await self.app(scope, receive, send)


def _wrap(app: FastAPI, cls: type[Exception], mlflow_handler: Callable[..., Response]) -> None:
    """Answer ``cls`` with ``mlflow_handler`` on MLflow paths, with the app's handler elsewhere."""
    previous: Handler | None = app.exception_handlers.get(cls)  # type: ignore[assignment]

    async def handler(request: Request, exc: Exception) -> Response:
        if is_mlflow_path(request.url.path):
            return mlflow_handler(request, exc)
        if previous is None:
            raise exc
        return await previous(request, exc)

    app.add_exception_handler(cls, handler)


def _validation_error(_request: Request, exc: RequestValidationError) -> Response:
    return _mlflow_response(_invalid_request(exc.errors()))


def _invalid_request(errors: Sequence[Any]) -> InvalidInput:
    """FastAPI's or pydantic's validation errors as MLflow's ``INVALID_PARAMETER_VALUE``."""
    problems = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        problems.append(f"{where or 'body'}: {error.get('msg')}")
    return InvalidInput("invalid request: " + "; ".join(problems))


async def mlflow_body(request: Request, model: type[Body]) -> Body:
    """The request's JSON body as ``model``, refused exactly as a FastAPI body parameter would
    be (same messages), for the routes MLflow's client calls once per point: a valid body is
    parsed and validated in one pass (pydantic's JSON mode), and only a refused one is parsed
    again the way FastAPI does, to word the refusal as it would.

    Raises:
        InvalidInput: An empty, malformed or non-JSON body, or one ``model`` refuses.
    """
    raw = await request.body()
    if not raw:
        _refuse([{"loc": ("body",), "msg": "Field required"}])
    if not _is_json(request.headers.get("content-type", "")):  # FastAPI's strict check
        _refuse([{"loc": ("body",), "msg": _NOT_AN_OBJECT}])
    with suppress(ValidationError):
        return model.model_validate_json(raw)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        _refuse([{"loc": ("body", exc.pos), "msg": "JSON decode error"}])
    except UnicodeDecodeError:
        raise InvalidInput("There was an error parsing the body: it is not UTF-8") from None
    if not isinstance(data, dict):
        _refuse([{"loc": ("body",), "msg": _NOT_AN_OBJECT}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        _refuse(exc.errors(include_url=False, include_context=False))


_NOT_AN_OBJECT = "Input should be a valid dictionary or object to extract fields from"


def _refuse(errors: Sequence[Any]) -> NoReturn:
    raise _invalid_request(errors)


def _is_json(content_type: str) -> bool:
    """FastAPI's test: ``application/json`` or ``application/*+json``, parameters aside."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code in (404, 405):
        error: OpsloopError = NotFound(
            f"the MLflow endpoint {request.method} {request.url.path} is not supported by opsloop",
            details={MLFLOW_CODE: "ENDPOINT_NOT_FOUND"},
        )
    else:
        error = OpsloopError(str(exc.detail))
    return _mlflow_response(error)
