"""Deployments over HTTP: management under ``/api/deployments`` and the inference endpoints
``/v1/deployments/{name}/predict``, ``/feedback`` and MLflow's ``/invocations`` (see
:mod:`opsloop.serving.scoring`), plus Prometheus ``/metrics``."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi import status
from pydantic import BaseModel
from pydantic import Field

from opsloop.kernel.bounds import Int64
from opsloop.kernel.bounds import NonNegativeInt64
from opsloop.kernel.identity import current_user
from opsloop.serving import rollouts
from opsloop.serving import routes
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

__all__ = ["router"]

router = APIRouter(tags=["deployments"])


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
