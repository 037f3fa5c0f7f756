"""Deployments over HTTP: management under ``/api/deployments`` and the inference endpoints
``/v1/deployments/{name}/predict``, ``/feedback`` and MLflow's ``/invocations`` (see
:mod:`opsloop.serving.scoring`), plus Prometheus ``/metrics``."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi import Depends
from fastapi import Request
from fastapi import Response
from fastapi import status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic import Field

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import OpsloopError
from opsloop.kernel.bounds import Int64
from opsloop.kernel.bounds import NonNegativeInt64
from opsloop.kernel.identity import current_user
from opsloop.serving import rollouts
from opsloop.serving import routes
from opsloop.serving import scoring
from opsloop.serving import services
from opsloop.serving.entities import Deployment
from opsloop.serving.entities import DeploymentCreate
from opsloop.serving.entities import DeploymentEvent
from opsloop.serving.entities import TrafficPolicy
from opsloop.serving.rollout_entities import Rollout
from opsloop.serving.rollout_entities import RolloutSpec
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State
from opsloop.web.deps import WriteSession
from opsloop.web.deps import require_metrics_token
from opsloop.web.limits import BodyLimit
from opsloop.web.openapi import error_response

__all__ = ["BODY_LIMITS", "MAX_BODY_BYTES", "inference_router", "metrics_router", "router"]

router = APIRouter(tags=["deployments"])
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


class PolicyChange(BaseModel):
    policy: TrafficPolicy
    expected_revision: Int64 | None = Field(None, description="409 if the deployment moved on")
    reason: str | None = None


class PromoteBody(BaseModel):
    alias: str | None = Field("champion", description="alias the candidate takes (null: none)")


class RollbackBody(BaseModel):
    reason: str | None = None


@router.post(routes.DEPLOYMENTS.template, status_code=status.HTTP_201_CREATED)
def create(body: DeploymentCreate, session: WriteSession) -> Deployment:
    return services.create_deployment(session, body, current_user())


@router.get(routes.DEPLOYMENTS.template)
def list_deployments(session: ReadSession) -> list[Deployment]:
    return services.list_deployments(session)


@router.get(routes.DEPLOYMENT.template)
def get(name: str, session: ReadSession) -> Deployment:
    return services.get_deployment(session, name)


@router.put(routes.POLICY.template)
def set_policy(name: str, body: PolicyChange, session: WriteSession) -> Deployment:
    """Change the traffic policy; running servers pick it up within a second."""
    return services.set_policy(
        session, name, body.policy, current_user(), reason=body.reason,
        expected_revision=body.expected_revision,
    )  # fmt: skip


@router.post(routes.PROMOTE.template)
def promote(name: str, body: PromoteBody, session: WriteSession) -> Deployment:
    return services.promote(session, name, current_user(), alias=body.alias)


@router.post(routes.ROLLBACK.template)
def rollback(name: str, body: RollbackBody, session: WriteSession) -> Deployment:
    return services.rollback(session, name, current_user(), body.reason)


@router.delete(routes.DEPLOYMENT.template, status_code=status.HTTP_204_NO_CONTENT)
def delete(name: str, session: WriteSession) -> None:
    services.delete_deployment(session, name, current_user())


@router.get(routes.EVENTS.template)
def events(name: str, session: ReadSession) -> list[DeploymentEvent]:
    return services.deployment_events(session, name)


@router.post(routes.ROLLOUTS.template, status_code=status.HTTP_201_CREATED)
def start_rollout(name: str, spec: RolloutSpec, session: WriteSession) -> Rollout:
    """Start a progressive rollout; the server's controller walks its steps (409 if one runs)."""
    return rollouts.start(session, name, spec, current_user())


@router.get(routes.ROLLOUT.template)
def get_rollout(name: str, session: ReadSession) -> Rollout:
    """The deployment's latest rollout with its analyses."""
    return rollouts.get_rollout(session, name)


@router.post(routes.ROLLOUT_ABORT.template)
def abort_rollout(name: str, body: RollbackBody, session: WriteSession) -> Rollout:
    return rollouts.abort(session, name, current_user(), body.reason)


class BatchRecord(BaseModel):
    model: str = Field(description="the model version that scored, NAME@N")
    input: str | None = Field(None, description="the input data version, if it was one")
    output: str = Field(description="the data version written")


@router.post(routes.BATCH_INFERENCES.template, status_code=status.HTTP_204_NO_CONTENT)
def record_batch(body: BatchRecord, session: WriteSession) -> None:
    """Record a batch inference's lineage (the SDK scores where the data is, then calls this)."""
    services.record_batch(session, body.model, body.input, body.output)


@router.get(routes.PREDICTIONS.template)
def predictions(name: str, state: State, limit: NonNegativeInt64 = 1000) -> list[dict[str, Any]]:
    """The latest logged predictions of this server (with joined labels), newest last."""
    frame = state.serving.log.predictions(name).tail(limit)
    return json.loads(frame.to_json(orient="records"))


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
