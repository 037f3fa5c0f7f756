"""The OpenAPI document, made true to what the server answers.

FastAPI documents a 422 ``HTTPValidationError`` on every route with parameters, while the server
answers a request that fails validation with a 400 ``InvalidInput``, and it documents none of
the ``OpsloopError`` statuses a route really gives. ``install_openapi(app)`` post-processes the
generated document once: each generated 422 becomes a 400, and each route gets the error
responses its dependencies, method and path imply, all described by one ``Error`` component
(the body ``OpsloopError.to_dict`` sends):

- 400 ``InvalidInput``: a route with parameters or a body (validation can fail), and any write
- 401 / 403 / 429: a route behind ``require_token`` (or ``/metrics``'s
  ``require_metrics_token``); 429 ``TooManyFailures`` once a client sent too many wrong tokens
- 404 ``NotFound``: a path parameter, or a body field that names a stored thing (``*_id``,
  ``*_ref``, a model, deployment, monitor or dataset reference)
- 409 ``Conflict``: a write that holds a write session, or that works through the app's state;
  an ``*_id`` path parameter (an id prefix that fits more than one)
- 413 ``PayloadTooLarge``: a route with a body that the app's body-limit middleware limits
- 503 ``StoreError``: a route that holds a session or the blobs, or works through the app's
  state behind ``require_token`` (an open route that reads the store, ``/healthz``, says so)

A response a route declares itself (``responses=`` beside the route) is kept as declared, so a
route whose answer differs from the rule says so where it is written (``error_response``
builds such a declaration): the inference endpoints declare their 422 for a payload that does
not fit, and a route that declares a 422 gets no 400 but the one it declares.
"""

from __future__ import annotations

import copy
import re
import typing
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.routing import iter_route_contexts

from opsloop.errors import OpsloopError
from opsloop.web.deps import Blobs
from opsloop.web.deps import ReadSession
from opsloop.web.deps import WriteSession
from opsloop.web.deps import get_state
from opsloop.web.deps import require_metrics_token
from opsloop.web.deps import require_token

__all__ = ["ERROR_SCHEMA", "error_response", "install_openapi"]

_ERROR_REF = "#/components/schemas/Error"
_WRITES = {"POST", "PUT", "PATCH", "DELETE"}
_BODIES = {"POST", "PUT", "PATCH"}
_REFERENCE_FIELDS = re.compile(r"(.*_(id|ids|ref)|model|deployment|monitor|reference|current)$")

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "description": "Every error the API answers on purpose (an OpsloopError).",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "INVALID_INPUT, NOT_FOUND, ..."},
                "message": {"type": "string", "description": "what went wrong, in one line"},
                "details": {
                    "type": "object",
                    "description": "machine-readable facts, e.g. the fields that failed",
                },
            },
        }
    },
}


def error_response(description: str) -> dict[str, Any]:
    """One documented error response whose body is the ``Error`` component."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _ERROR_REF}}},
    }


def install_openapi(app: FastAPI) -> None:
    """Make ``app``'s ``/openapi.json`` document the errors the app really answers."""
    generate = app.openapi
    done: list[int] = []

    def openapi() -> dict[str, Any]:
        document = generate()  # cached by FastAPI until its routes change
        if not done or done[-1] != id(document):
            _make_true(app, document)
            done.append(id(document))
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _make_true(app: FastAPI, document: dict[str, Any]) -> None:
    by_status = _error_classes()
    limited = _body_limit_probe(app)
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute) or not context.include_in_schema:
            continue
        route: Any = context
        for method in route.methods:
            operation = document["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            generated_422 = _is_generated_422(responses.get("422"))
            if generated_422:
                del responses["422"]
            for status in sorted(_statuses(route, method, generated_422, limited)):
                if status in by_status:
                    responses.setdefault(str(status), _described(by_status[status]))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = copy.deepcopy(ERROR_SCHEMA)
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 bodies
        others = {name: schema for name, schema in schemas.items() if name != unused}
        if unused in schemas and f"/{unused}'" not in repr((document["paths"], others)):
            del schemas[unused]


def _statuses(route: Any, method: str, validated: bool, limited: Any) -> set[int]:
    declared_422 = 422 in route.responses or "422" in route.responses
    calls = _calls(route.dependant)
    direct = {dep.call for dep in route.dependant.dependencies}
    sessions = {_dependency(WriteSession), _dependency(ReadSession), _dependency(Blobs)}
    guarded = bool(calls & {require_token, require_metrics_token})
    through_state = get_state in direct
    statuses: set[int] = set()
    if (validated or method in _WRITES) and not declared_422:
        statuses.add(400)
    if guarded:
        statuses |= {401, 403, 429}
    if route.dependant.path_params or _names_stored_things(route):
        statuses.add(404)
    writes = method in _WRITES and (_dependency(WriteSession) in calls or through_state)
    if writes or any(param.name.endswith("_id") for param in route.dependant.path_params):
        statuses.add(409)
    if method in _BODIES and limited(method, route.path_format):
        statuses.add(413)
    if calls & sessions or (through_state and require_token in calls):
        statuses.add(503)
    return statuses


def _calls(dependant: Dependant) -> set[Any]:
    found: set[Any] = set()
    for sub in dependant.dependencies:
        found.add(sub.call)
        found |= _calls(sub)
    return found


def _dependency(alias: Any) -> Any:
    """The callable behind an ``Annotated[..., Depends(f)]`` alias."""
    return typing.get_args(alias)[1].dependency


def _names_stored_things(route: Any) -> bool:
    if route.body_field is None:
        return False
    fields = getattr(route.body_field.field_info.annotation, "model_fields", None) or {
        param.name: param for param in route.dependant.body_params
    }
    return any(_REFERENCE_FIELDS.fullmatch(name) for name in fields)


def _is_generated_422(response: Any) -> bool:
    return isinstance(response, dict) and "HTTPValidationError" in repr(response)


def _error_classes() -> dict[int, type[OpsloopError]]:
    found: dict[int, type[OpsloopError]] = {}
    pending = list(OpsloopError.__subclasses__())
    while pending:
        cls = pending.pop(0)
        found.setdefault(cls.http_status, cls)
        pending += cls.__subclasses__()
    return found


def _described(cls: type[OpsloopError]) -> dict[str, Any]:
    summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
    if cls.http_status == 400:
        summary += " A request that fails validation lists its fields in details.errors."
    return error_response(f"{cls.code} ({cls.__name__}): {summary}".strip())


def _body_limit_probe(app: FastAPI) -> Any:
    """Whether a body sent with ``method`` to a route's path has a limit: asked of the app's
    body-limit middleware (one that answers ``limit_for(method, path)``), if it has one."""
    probes = [
        middleware.cls(None, *middleware.args, **middleware.kwargs)
        for middleware in app.user_middleware
        if hasattr(middleware.cls, "limit_for")
    ]

    def limited(method: str, path_format: str) -> bool:
        path = re.sub(r"\{[^}]+\}", "x", path_format)
        return any(probe.limit_for(method, path) is not None for probe in probes)

    return limited
