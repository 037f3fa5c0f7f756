"""MLflow's scoring protocol, so a client written for ``mlflow models serve`` works unchanged.

``POST /v1/deployments/{name}/invocations`` (every server) and ``POST /invocations`` (``opsloop
serve``, for the deployment it was started for) take MLflow's bodies (``dataframe_split``,
``dataframe_records``, ``instances``, ``inputs``, with ``params.predict_method``) as JSON, or a
CSV table (``text/csv``), and answer ``{"predictions": [...]}``. The prediction's request id
(the caller's ``X-Request-Id``, else a new one) and the version that answered ride in the
``X-Opsloop-Request-Id`` and ``X-Opsloop-Model`` headers (the server's own ``X-Request-Id``
names the HTTP request in its audit log), so MLflow's body stays as its clients parse it and
ground truth can still be sent to ``/feedback``. Errors come
in MLflow's shape, ``{"error_code": "BAD_REQUEST", "message": ...}``.

Answering is :meth:`ServingRuntime.predict`, as on opsloop's own ``/predict``: traffic policies,
micro-batching, canary / shadow / A-B, metrics and the prediction log all apply. ``GET /ping``,
``/health`` and ``/version`` answer as MLflow's server does (``ping``: the process is up).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi import Request
from fastapi import Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from pydantic import Field

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import OpsloopError
from opsloop.serving import routes
from opsloop.web.deps import State

__all__ = [
    "MlflowError",
    "invocations_router",
    "mlflow_error",
    "probe_router",
    "root_invocations_router",
]

invocations_router = APIRouter(tags=["inference"])
probe_router = APIRouter(tags=["meta"])

# MLflow's error codes for opsloop's (its client raises MlflowException with these).
_MLFLOW_CODES = {
    "INVALID_INPUT": "BAD_REQUEST",
    "NOT_FOUND": "RESOURCE_DOES_NOT_EXIST",
    "PERMISSION_DENIED": "PERMISSION_DENIED",
    "UNAUTHENTICATED": "UNAUTHENTICATED",
    "TOO_LARGE": "BAD_REQUEST",
    "CONFLICT": "INVALID_STATE",
    "STORE_ERROR": "TEMPORARILY_UNAVAILABLE",
}
_CONTENT_TYPES = ("application/json", "text/csv")


class MlflowError(BaseModel):
    """MLflow's error body (its client raises ``MlflowException`` from it). A missing or wrong
    token and a body over the size limit are refused before the protocol is reached, in
    opsloop's ``Error`` shape."""

    error_code: str = Field(examples=["BAD_REQUEST"])
    message: str = Field(description="what is wrong and what to send instead")


def _documented(description: str) -> dict[str, Any]:
    return {"model": MlflowError, "description": description}


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _documented("BAD_REQUEST: the body does not fit (the message says what to fix)"),
    404: _documented("RESOURCE_DOES_NOT_EXIST: no such deployment"),
    415: _documented("BAD_REQUEST: send application/json or text/csv"),
    503: _documented("TEMPORARILY_UNAVAILABLE: the metadata store is down"),
}


def mlflow_error(exc: OpsloopError) -> JSONResponse:
    """``exc`` in MLflow's shape; bad input is a 400, as MLflow's scoring server answers it."""
    code = _MLFLOW_CODES.get(exc.code, "INTERNAL_ERROR")
    status = 400 if isinstance(exc, InvalidInput) else exc.http_status
    body = MlflowError(error_code=code, message=exc.message)
    return JSONResponse(body.model_dump(), status_code=status)


def _read_csv(raw: bytes) -> dict[str, Any]:
    import io

    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(raw))
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' parser errors are ValueErrors
        raise InvalidInput(f"the body is not a readable CSV table: {exc}") from None
    split = frame.to_dict(orient="split")
    return {"dataframe_split": {"columns": split["columns"], "data": split["data"]}}


class _UnsupportedType(InvalidInput):
    """A body in a content type the protocol does not take (MLflow answers it with 415)."""

    http_status = 415


def _read_body(request: Request, raw: bytes) -> Any:
    """The body as a JSON value (a CSV table becomes MLflow's ``dataframe_split``)."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind == "text/csv":
        return _read_csv(raw)
    if kind not in _CONTENT_TYPES:
        raise _UnsupportedType(
            f"content type {kind!r} is not supported: send {' or '.join(_CONTENT_TYPES)}"
        )
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None


async def invoke(name: str, request: Request, state: State) -> Response:
    """Answer one MLflow scoring request with deployment ``name``."""
    try:
        body = _read_body(request, await request.body())
        if not isinstance(body, dict):
            raise InvalidInput(
                "the body must be a JSON object with one of dataframe_split, dataframe_records, "
                'instances or inputs, e.g. {"dataframe_records": [{...}]}'
            )
        answer = await run_in_threadpool(
            state.serving.predict, name, body, request.headers, request.cookies
        )
    except _UnsupportedType as exc:
        return JSONResponse(
            MlflowError(error_code="BAD_REQUEST", message=exc.message).model_dump(), 415
        )
    except OpsloopError as exc:
        return mlflow_error(exc)
    headers = {"X-Opsloop-Request-Id": answer["request_id"], "X-Opsloop-Model": answer["model"]}
    if "fallback_from" in answer:
        headers["X-Opsloop-Fallback-From"] = answer["fallback_from"]
    return JSONResponse({"predictions": answer["predictions"]}, headers=headers)


@invocations_router.post(routes.INVOCATIONS.template, responses=_ERRORS)
async def invocations(name: str, request: Request, state: State) -> Response:
    """MLflow's scoring protocol for deployment ``name``: ``{"predictions": [...]}``."""
    return await invoke(name, request, state)


def root_invocations_router(deployment: Callable[[State], str]) -> APIRouter:
    """``POST /invocations`` answered by the deployment ``deployment(state)`` names (which
    raises ``NotFound`` when there is no single one to answer)."""
    router = APIRouter(tags=["inference"])

    @router.post(routes.ROOT_INVOCATIONS.template, responses=_ERRORS)
    async def root_invocations(request: Request, state: State) -> Response:
        """MLflow's scoring protocol, as ``mlflow models serve`` answers it."""
        try:
            name = await run_in_threadpool(deployment, state)
        except NotFound as exc:
            return mlflow_error(exc)
        return await invoke(name, request, state)

    return router


@probe_router.get("/ping", response_class=PlainTextResponse)
@probe_router.get("/health", response_class=PlainTextResponse)
def ping() -> str:
    """200 while the process answers (MLflow's liveness probe; ``/healthz`` also asks the
    store, which makes it the readiness probe)."""
    return "\n"


@probe_router.get("/version", response_class=PlainTextResponse)
def version() -> str:
    """The server's version, as text (MLflow's server answers its own the same way)."""
    from opsloop.kernel import __version__

    return __version__
