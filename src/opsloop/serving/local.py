"""Deployments in-process: the services over a ``Store``, and this process's inference runtime.

The services (with the registry's alias and version code under them) are imported by the calls
that use them: a monitor check, which builds this backend only for its prediction log, does not
import them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.kernel.identity import current_user
from opsloop.kernel.store_calls import StoreCalls
from opsloop.serving.backend import DeploymentBackend
from opsloop.serving.entities import Deployment
from opsloop.serving.entities import DeploymentCreate
from opsloop.serving.entities import DeploymentEvent
from opsloop.serving.entities import TrafficPolicy
from opsloop.serving.ports import ModelSource
from opsloop.serving.rollout_entities import Rollout
from opsloop.serving.rollout_entities import RolloutSpec
from opsloop.store.database import Store

if TYPE_CHECKING:  # imported on first use: a client that never predicts skips pyarrow & co.
    from sqlalchemy.orm import Session

    from opsloop.serving.predlog import PredictionLog
    from opsloop.serving.runtime import ServingRuntime

__all__ = ["LocalDeploymentBackend"]


class LocalDeploymentBackend(StoreCalls, DeploymentBackend):
    """Calls the serving services over ``store``; predictions are answered by an in-process
    :class:`ServingRuntime` (models from ``models``, the log under ``predictions``), started
    on first use so a client that never predicts starts no threads and opens no log."""

    def __init__(self, store: Store, models: ModelSource, predictions: Path) -> None:
        self.store = store
        self._models = models
        self._predictions = predictions
        self._runtime: ServingRuntime | None = None
        self._runtime_lock = threading.Lock()

    # -- the in-process runtime -----------------------------------------------------------------
    @property
    def runtime(self) -> ServingRuntime:
        """This process's inference runtime (started on first use)."""
        with self._runtime_lock:
            if self._runtime is None:
                from opsloop.governance.masker import IngestMasking
                from opsloop.serving.metrics import ServingMetrics
                from opsloop.serving.predlog import PredictionLog
                from opsloop.serving.runtime import ServingRuntime

                log = PredictionLog(self._predictions, masking=IngestMasking(self.store))
                self._runtime = ServingRuntime(self, self._models, log, ServingMetrics())
            return self._runtime

    @property
    def prediction_log(self) -> PredictionLog:
        return self.runtime.log

    @contextmanager
    def _changing(self, name: str) -> Iterator[Session]:
        """A write transaction that changes deployment ``name``. Once it commits, this
        process's inference sees the change at once, not after the runtime's policy cache
        expires."""
        with self.store.write() as s:
            yield s
        if self._runtime is not None:
            self._runtime.forget(name)

    # -- deployments ----------------------------------------------------------------------------
    def create(self, body: DeploymentCreate) -> Deployment:
        from opsloop.serving import services

        return self._write(services.create_deployment, body, current_user())

    def get(self, name: str) -> Deployment:
        from opsloop.serving import services

        return self._read(services.get_deployment, name)

    def list(self) -> list[Deployment]:
        from opsloop.serving import services

        return self._read(services.list_deployments)

    def set_policy(
        self, name: str, policy: TrafficPolicy, expected_revision: int | None, reason: str | None
    ) -> Deployment:
        from opsloop.serving import services

        with self._changing(name) as s:
            return services.set_policy(
                s, name, policy, current_user(), reason=reason, expected_revision=expected_revision
            )

    def promote(self, name: str, alias: str | None) -> Deployment:
        from opsloop.serving import services

        with self._changing(name) as s:
            return services.promote(s, name, current_user(), alias=alias)

    def rollback(self, name: str, reason: str | None) -> Deployment:
        from opsloop.serving import services

        with self._changing(name) as s:
            return services.rollback(s, name, current_user(), reason)

    def delete(self, name: str) -> None:
        from opsloop.serving import services

        with self._changing(name) as s:
            services.delete_deployment(s, name, current_user())

    def events(self, name: str) -> list[DeploymentEvent]:
        from opsloop.serving import services

        return self._read(services.deployment_events, name)

    def record_batch(self, model_ref: str, input_ref: str | None, output_ref: str) -> None:
        from opsloop.serving import services

        self._write(services.record_batch, model_ref, input_ref, output_ref)

    # -- rollouts -------------------------------------------------------------------------------
    def start_rollout(self, name: str, spec: RolloutSpec) -> Rollout:
        from opsloop.serving import rollouts

        with self._changing(name) as s:
            return rollouts.start(s, name, spec, current_user())

    def rollout(self, name: str) -> Rollout:
        from opsloop.serving import rollouts

        return self._read(rollouts.get_rollout, name)

    def abort_rollout(self, name: str, reason: str | None) -> Rollout:
        from opsloop.serving import rollouts

        with self._changing(name) as s:
            return rollouts.abort(s, name, current_user(), reason)

    def advance(self, name: str) -> Rollout:
        from opsloop.serving import rollouts

        current = self.rollout(name)
        if current.status != "running":
            return current
        window = self.runtime.log.window
        with self._changing(name) as s:
            return rollouts.tick(s, current.id, window)

    # -- inference ------------------------------------------------------------------------------
    def predict(
        self, name: str, body: dict[str, Any], headers: Mapping[str, str] | None
    ) -> dict[str, Any]:
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        return dict(self.runtime.predict(name, body, lowered, {}))

    def predictions(self, name: str) -> Any:
        return self.runtime.log.predictions(name)

    def feedback(self, name: str, items: list[dict[str, Any]]) -> int:
        return int(self.runtime.feedback(name, items))

    def close(self) -> None:
        with self._runtime_lock:
            runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.close()
