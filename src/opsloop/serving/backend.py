"""The deployments backend contract: what :class:`~opsloop.serving.sdk.DeploymentsClient` needs,
in-process or from a server.

Two implementations: :class:`~opsloop.serving.local.LocalDeploymentBackend` calls the services
over a ``Store`` and answers predictions with this process's
:class:`~opsloop.serving.runtime.ServingRuntime`; :class:`~opsloop.serving.remote.
RemoteDeploymentBackend` calls the REST API and the server's inference endpoints, which run the
same services and runtime. Everything that differs between the two (where a prediction is
answered, whose prediction log is read, who advances a rollout) is a method here, so the SDK is
written once.

Contract: methods are thread-safe; returned entities are immutable snapshots; errors are
``OpsloopError`` subclasses, the same class whichever backend raised them; every write is
durable when the method returns. A traffic change made through the in-process backend reaches
its own runtime at once; a server's runtime picks it up within its policy TTL (a second).
"""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from opsloop.serving.entities import Deployment
from opsloop.serving.entities import DeploymentCreate
from opsloop.serving.entities import DeploymentEvent
from opsloop.serving.entities import TrafficPolicy
from opsloop.serving.rollout_entities import Rollout
from opsloop.serving.rollout_entities import RolloutSpec

if TYPE_CHECKING:
    from opsloop.serving.predlog import PredictionLog

__all__ = ["DeploymentBackend"]


class DeploymentBackend(ABC):
    """Deployments, their traffic, rollouts and inference. See the module docstring."""

    # -- deployments ----------------------------------------------------------------------------
    @abstractmethod
    def create(self, body: DeploymentCreate) -> Deployment:
        """Create the deployment ``body.name`` serving ``body.policy``'s versions.

        Raises ``Conflict`` if a deployment of that name exists, ``NotFound`` if the model
        has no version the policy names, ``InvalidInput`` for a malformed body."""

    @abstractmethod
    def get(self, name: str) -> Deployment:
        """The deployment ``name`` with its traffic policy. Raises ``NotFound``."""

    @abstractmethod
    def list(self) -> list[Deployment]:
        """Every deployment, by name. Raises nothing but ``StoreError`` (store unreachable)."""

    @abstractmethod
    def set_policy(
        self, name: str, policy: TrafficPolicy, expected_revision: int | None, reason: str | None
    ) -> Deployment:
        """Replace the traffic policy (recorded as an event with ``reason``); with
        ``expected_revision`` only if the deployment is still at that revision.

        Raises ``NotFound`` (no such deployment, or the model has no version the policy
        names), ``Conflict`` (the revision moved on)."""

    @abstractmethod
    def promote(self, name: str, alias: str | None) -> Deployment:
        """The candidate takes all traffic and, unless ``alias`` is None, that model alias.

        Raises ``NotFound`` (no such deployment), ``InvalidInput`` (no candidate)."""

    @abstractmethod
    def rollback(self, name: str, reason: str | None) -> Deployment:
        """All traffic back to the stable version; the candidate is dropped.

        Raises ``NotFound`` (no such deployment), ``InvalidInput`` (no candidate)."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove the deployment and its lineage edges. Raises ``NotFound``."""

    @abstractmethod
    def events(self, name: str) -> list[DeploymentEvent]:
        """The deployment's traffic changes, oldest first. Raises ``NotFound``."""

    @abstractmethod
    def record_batch(self, model_ref: str, input_ref: str | None, output_ref: str) -> None:
        """Record a batch inference's lineage: model version ``model_ref`` predicted data
        version ``output_ref`` (from data version ``input_ref``, if the input was one).

        Raises ``NotFound`` if any of the versions does not exist."""

    # -- rollouts -------------------------------------------------------------------------------
    @abstractmethod
    def start_rollout(self, name: str, spec: RolloutSpec) -> Rollout:
        """Start a progressive rollout of ``spec.candidate`` (its traffic starts at 0%).

        Raises ``NotFound`` (no such deployment or version), ``Conflict`` (a rollout is
        running), ``InvalidInput`` (the candidate is already the stable version)."""

    @abstractmethod
    def rollout(self, name: str) -> Rollout:
        """The deployment's latest rollout with its analyses.

        Raises ``NotFound`` (no such deployment, or it has had no rollout)."""

    @abstractmethod
    def abort_rollout(self, name: str, reason: str | None) -> Rollout:
        """Stop the running rollout and roll its candidate back.

        Raises ``NotFound`` (no such deployment), ``InvalidInput`` (no rollout running)."""

    @abstractmethod
    def advance(self, name: str) -> Rollout:
        """Move the deployment's running rollout on as far as it can go now, and return it.

        In-process, the rollout's checks judge this process's prediction log; against a
        server its controller does the work and this reads the rollout's state. A rollout
        that is not running is returned as it is. Raises ``NotFound`` (no such deployment, or
        it has had no rollout)."""

    # -- inference ------------------------------------------------------------------------------
    @abstractmethod
    def predict(
        self, name: str, body: dict[str, Any], headers: Mapping[str, str] | None
    ) -> dict[str, Any]:
        """Answer the request ``body`` (``{"records": [...]}`` or another shape the endpoint
        takes) with the version the deployment's traffic policy routes it to; ``headers``
        (``X-Request-Id``, sticky routing keys) as an HTTP client would send them.

        Returns ``{"request_id", "deployment", "model", "predictions"}`` (plus
        ``fallback_from`` when a failing candidate was answered for). Raises ``NotFound`` (no
        such deployment), ``InvalidInput`` (a body or rows the model refuses)."""

    @abstractmethod
    def predictions(self, name: str) -> Any:
        """Logged predictions of ``name`` with their joined labels, oldest first (a pandas
        DataFrame): this process's prediction log in-process, the server's over HTTP (its
        latest 1000). A name nothing was logged for gives an empty frame, on either backend
        (the log does not know which deployments exist)."""

    @abstractmethod
    def feedback(self, name: str, items: list[dict[str, Any]]) -> int:
        """Record ground truth: ``items`` are ``{"request_id": str, "label": ...}``. Returns
        how many were accepted. Raises ``NotFound`` (no such deployment), ``InvalidInput`` (an
        item without a request id or label)."""

    @property
    @abstractmethod
    def prediction_log(self) -> PredictionLog:
        """The prediction log this process's inference writes, for the monitors, scheduler
        and rollout checks that run in this process. Raises ``InvalidInput`` against a server,
        which keeps its own log (read it with :meth:`predictions`)."""

    def close(self) -> None:  # noqa: B027 - optional hook: most backends hold nothing
        """Release what the backend started (the in-process runtime: its pools and log)."""
