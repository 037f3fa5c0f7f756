"""Deployments on an opsloop server: the REST API under ``/api/deployments`` and the server's
inference endpoints, through an ``HttpTransport``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.kernel.remote_backend import RemoteBackend
from opsloop.serving import routes
from opsloop.serving.backend import DeploymentBackend
from opsloop.serving.entities import Deployment
from opsloop.serving.entities import DeploymentCreate
from opsloop.serving.entities import DeploymentEvent
from opsloop.serving.entities import TrafficPolicy
from opsloop.serving.rollout_entities import Rollout
from opsloop.serving.rollout_entities import RolloutSpec

if TYPE_CHECKING:
    from opsloop.serving.predlog import PredictionLog

__all__ = ["RemoteDeploymentBackend"]


class RemoteDeploymentBackend(RemoteBackend, DeploymentBackend):
    """Calls the server's REST API; the server's runtime answers predictions and its rollout
    controller advances rollouts."""

    # -- deployments ----------------------------------------------------------------------------
    def create(self, body: DeploymentCreate) -> Deployment:
        return self._post(Deployment, routes.DEPLOYMENTS.url(), body.model_dump(mode="json"))

    def get(self, name: str) -> Deployment:
        return self.transport.fetch(Deployment, "GET", routes.DEPLOYMENT.url(name=name))

    def list(self) -> list[Deployment]:
        return self.transport.fetch(list[Deployment], "GET", routes.DEPLOYMENTS.url())

    def set_policy(
        self, name: str, policy: TrafficPolicy, expected_revision: int | None, reason: str | None
    ) -> Deployment:
        body = {"policy": policy.model_dump(mode="json"), "expected_revision": expected_revision,
                "reason": reason}  # fmt: skip
        return self.transport.fetch(Deployment, "PUT", routes.POLICY.url(name=name), json=body)

    def promote(self, name: str, alias: str | None) -> Deployment:
        return self._post(Deployment, routes.PROMOTE.url(name=name), {"alias": alias})

    def rollback(self, name: str, reason: str | None) -> Deployment:
        return self._post(Deployment, routes.ROLLBACK.url(name=name), {"reason": reason})

    def delete(self, name: str) -> None:
        self.transport.request("DELETE", routes.DEPLOYMENT.url(name=name))

    def events(self, name: str) -> list[DeploymentEvent]:
        return self.transport.fetch(list[DeploymentEvent], "GET", routes.EVENTS.url(name=name))

    def record_batch(self, model_ref: str, input_ref: str | None, output_ref: str) -> None:
        body = {"model": model_ref, "input": input_ref, "output": output_ref}
        self.transport.request("POST", routes.BATCH_INFERENCES.url(), json=body)

    # -- rollouts -------------------------------------------------------------------------------
    def start_rollout(self, name: str, spec: RolloutSpec) -> Rollout:
        return self._post(Rollout, routes.ROLLOUTS.url(name=name), spec.model_dump(mode="json"))

    def rollout(self, name: str) -> Rollout:
        return self.transport.fetch(Rollout, "GET", routes.ROLLOUT.url(name=name))

    def abort_rollout(self, name: str, reason: str | None) -> Rollout:
        return self._post(Rollout, routes.ROLLOUT_ABORT.url(name=name), {"reason": reason})

    def advance(self, name: str) -> Rollout:
        return self.rollout(name)  # the server's controller does the work

    # -- inference ------------------------------------------------------------------------------
    def predict(
        self, name: str, body: dict[str, Any], headers: Mapping[str, str] | None
    ) -> dict[str, Any]:
        answer = self.transport.json(
            "POST", routes.PREDICT.url(name=name), json=body, headers=dict(headers or {}),
            idempotent=False,
        )  # fmt: skip
        return dict(answer)

    def predictions(self, name: str) -> Any:
        import pandas as pd

        return pd.DataFrame(self.transport.json("GET", routes.PREDICTIONS.url(name=name)))

    def feedback(self, name: str, items: list[dict[str, Any]]) -> int:
        answer = self.transport.json(
            "POST", routes.FEEDBACK.url(name=name), json=items, idempotent=False
        )
        return int(answer["accepted"])

    @property
    def prediction_log(self) -> PredictionLog:
        raise InvalidInput(
            "the server keeps the prediction log; read it with client.deployments.predictions()"
        )
