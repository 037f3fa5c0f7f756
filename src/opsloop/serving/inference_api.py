"""The inference endpoints (``/v1/deployments/NAME/predict``, feedback, MLflow's invocations) and
``/metrics``: all ``opsloop serve`` mounts, apart from the deployments' management routes
(:mod:`opsloop.serving.api`), so a serving process does not import what managing needs
(rollouts, events, batch lineage) before its first prediction.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi import Depends
from fastapi import Request
from fastapi import Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import OpsloopError
from opsloop.serving import routes
from opsloop.serving import scoring
from opsloop.web.deps import State
from opsloop.web.deps import require_metrics_token
from opsloop.web.limits import BodyLimit
from opsloop.web.openapi import error_response

__all__ = ["BODY_LIMITS", "MAX_BODY_BYTES", "inference_router", "metrics_router"]

inference_router = APIRouter(tags=["inference"])
inference_router.include_router(scoring.invocations_router)  # wherever /predict is, MLflow's too
# The server token or the scrape token (settings.metrics_token), wherever it is mounted.
metrics_router = APIRouter(tags=["meta"], dependencies=[Depends(require_metrics_token)])
MAX_BODY_BYTES = 10 * 1024 * 1024
# A larger predict or feedback body is refused (413) before it is read whole.
BODY_LIMITS = [
    BodyLimit("POST", routes.PREDICT, MAX_BODY_BYTES),
    BodyLimit("POST", routes.FEEDBACK, MAX_BODY_BYTES),
    BodyLimit("POST", routes.INVOCATIONS, MAX_BODY_BYTES),
    BodyLimit("POST", routes.ROOT_INVOCATIONS, MAX_BODY_BYTES),
]


async def _json_body(request: Request) -> Any:
    body = await request.body()  # at most MAX_BODY_BYTES: BODY_LIMITS refuses more
    try:
        return json.loads(body)
    except ValueError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None


def _error(exc: OpsloopError) -> JSONResponse:
    if isinstance(exc, InvalidInput):
        return JSONResponse(exc.to_dict(), status_code=422)
    return JSONResponse(exc.to_dict(), status_code=exc.http_status)


# The inference endpoints answer a payload that does not fit with 422 (their clients expect it).
_UNFIT = error_response("INVALID_INPUT: the payload does not fit (the message names the field)")
_NOT_JSON = error_response("INVALID_INPUT: the body is not valid JSON")


@inference_router.post(routes.PREDICT.template, responses={400: _NOT_JSON, 422: _UNFIT})
async def predict(name: str, request: Request, state: State) -> Response:
    """Answer with the version the deployment's traffic policy picks. 422 names a wrong field."""
    runtime = state.serving
    try:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise InvalidInput('the body must be a JSON object, e.g. {"records": [{...}]}')
        answer = await run_in_threadpool(
            runtime.predict, name, body, request.headers, request.cookies
        )
    except OpsloopError as exc:
        if isinstance(exc, InvalidInput) and "not valid JSON" in exc.message:
            return JSONResponse(exc.to_dict(), status_code=400)
        return _error(exc)
    return JSONResponse(answer)


@inference_router.post(routes.FEEDBACK.template, responses={422: _UNFIT})
async def feedback(name: str, request: Request, state: State) -> Response:
    """Ground truth for earlier answers: ``{"request_id", "label"}`` or a list of them."""
    try:
        body = await _json_body(request)
        items = body if isinstance(body, list) else [body]
        count = await run_in_threadpool(state.serving.feedback, name, items)
    except NotFound as exc:
        return _error(exc)
    except OpsloopError as exc:
        return _error(exc)
    return JSONResponse({"accepted": count})


@metrics_router.get(routes.METRICS.template, response_class=Response)
def metrics(state: State) -> Response:
    """Prometheus text format: requests, latency histograms, in-flight, batch sizes."""
    from prometheus_client import generate_latest

    from opsloop.kernel.metrics import REGISTRY

    body = state.serving.metrics.render() + generate_latest(REGISTRY)
    return Response(body, media_type="text/plain; version=0.0.4")
