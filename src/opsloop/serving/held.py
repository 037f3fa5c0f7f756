"""Deployments during a reproduction: every traffic change held, none made.

The serving half of :mod:`opsloop.registry.held` (see there, and
:class:`~opsloop.kernel.step_context.Rehearsal`): a step that deploys, shifts traffic,
promotes, rolls back, starts or steps a rollout, deletes a deployment, records a batch or
sends feedback is recorded as "would deploy churn@4 as churn", and production traffic is left
as it was. These writes are held as not faithful: what the step got back is a deployment that
does not exist, so the comparison reports the step as held rather than judging its outputs.
Reads and predictions go through (a prediction changes no deployment).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import Conflict
from opsloop.kernel.identity import current_user
from opsloop.kernel.step_context import HeldWrites
from opsloop.kernel.step_context import current_rehearsal
from opsloop.kernel.timeutil import now_ms
from opsloop.serving.backend import DeploymentBackend
from opsloop.serving.entities import Deployment
from opsloop.serving.entities import DeploymentCreate
from opsloop.serving.entities import DeploymentEvent
from opsloop.serving.entities import TrafficPolicy
from opsloop.serving.rollout_entities import Rollout
from opsloop.serving.rollout_entities import RolloutSpec

if TYPE_CHECKING:
    from opsloop.serving.predlog import PredictionLog

__all__ = ["HeldDeploymentBackend", "HeldRollout"]


class HeldRollout(Conflict):
    """A rollout asked for inside a reproduction: there is no rollout to hand back (it would
    advance on its own, over real traffic), so the step stops here and is reported held."""


class HeldDeploymentBackend(HeldWrites, DeploymentBackend):
    """``inner`` with its writes held while a reproduction runs (see the module)."""

    _inner: DeploymentBackend

    @staticmethod
    def _hold(write: str, what: str) -> bool:
        """Hold the write (True) inside a reproduction; False: make it."""
        rehearsal = current_rehearsal()
        if rehearsal is None:
            return False
        rehearsal.hold(f"deployments.{write}", what, faithful=False)
        return True

    # -- writes -------------------------------------------------------------------------------
    def create(self, body: DeploymentCreate) -> Deployment:
        if not self._hold("create", f"would deploy {body.model} as {body.name!r}"):
            return self._inner.create(body)
        now = now_ms()
        return Deployment(
            name=body.name, model=body.model, policy=body.policy, status="active", revision=0,
            description=body.description, created_at=now, updated_at=now,
            created_by=current_user(),
        )  # fmt: skip

    def set_policy(
        self, name: str, policy: TrafficPolicy, expected_revision: int | None, reason: str | None
    ) -> Deployment:
        if not self._hold("set_policy", f"would change the traffic of deployment {name!r}"):
            return self._inner.set_policy(name, policy, expected_revision, reason)
        return self._inner.get(name).model_copy(update={"policy": policy})

    def promote(self, name: str, alias: str | None) -> Deployment:
        if not self._hold("promote", f"would promote the candidate of deployment {name!r}"):
            return self._inner.promote(name, alias)
        return self._inner.get(name)

    def rollback(self, name: str, reason: str | None) -> Deployment:
        if not self._hold("rollback", f"would roll deployment {name!r} back"):
            return self._inner.rollback(name, reason)
        return self._inner.get(name)

    def delete(self, name: str) -> None:
        if not self._hold("delete", f"would delete deployment {name!r}"):
            self._inner.delete(name)

    def record_batch(self, model_ref: str, input_ref: str | None, output_ref: str) -> None:
        if not self._hold("record_batch", f"would record {output_ref} as scored by {model_ref}"):
            self._inner.record_batch(model_ref, input_ref, output_ref)

    def start_rollout(self, name: str, spec: RolloutSpec) -> Rollout:
        if not self._hold("start_rollout", f"would start a rollout on deployment {name!r}"):
            return self._inner.start_rollout(name, spec)
        self._inner.get(name)  # a deployment that does not exist is still an error
        raise HeldRollout(f"a rollout of {name!r} is not started inside a reproduction")

    def abort_rollout(self, name: str, reason: str | None) -> Rollout:
        if not self._hold("abort_rollout", f"would abort the rollout of {name!r}"):
            return self._inner.abort_rollout(name, reason)
        return self._inner.rollout(name)

    def advance(self, name: str) -> Rollout:
        if not self._hold("advance", f"would advance the rollout of {name!r}"):
            return self._inner.advance(name)
        return self._inner.rollout(name)

    def feedback(self, name: str, items: list[dict[str, Any]]) -> int:
        if not self._hold("feedback", f"would record {len(items)} outcome(s) for {name!r}"):
            return self._inner.feedback(name, items)
        return len(items)

    # -- reads and predictions: through -------------------------------------------------------
    def get(self, name: str) -> Deployment:
        return self._inner.get(name)

    def list(self) -> list[Deployment]:
        return self._inner.list()

    def events(self, name: str) -> list[DeploymentEvent]:
        return self._inner.events(name)

    def rollout(self, name: str) -> Rollout:
        return self._inner.rollout(name)

    def predict(
        self, name: str, body: dict[str, Any], headers: Mapping[str, str] | None
    ) -> dict[str, Any]:
        return self._inner.predict(name, body, headers)

    def predictions(self, name: str) -> Any:
        return self._inner.predictions(name)

    @property
    def prediction_log(self) -> PredictionLog:  # a property, as on DeploymentBackend
        return self._inner.prediction_log

    def close(self) -> None:
        self._inner.close()
