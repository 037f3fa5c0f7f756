"""Deployments in-process: the services over a ``Store``, and this process's inference runtime.

The services (with the registry's alias and version code under them) are imported by the calls
that use them: a monitor check, which builds this backend only for its prediction log, does not
import them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from functools import cached_property
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

if TYPE_CHECKING:  # imported on first use: a client that never predicts skips pyarrow & co.
    from sqlalchemy.orm import Session

    from opsloop.serving.predlog import PredictionLog
    from opsloop.serving.predlog_shared import SharedLog
    from opsloop.serving.quick_reads import DeploymentReads
    from opsloop.serving.runtime import ServingRuntime
    from opsloop.store.database import Store

__all__ = ["LocalDeploymentBackend"]


class LocalDeploymentBackend(StoreCalls, DeploymentBackend):
    """Calls the serving services over the store; predictions are answered by an in-process
    :class:`ServingRuntime` (models from ``models``, the log under ``predictions``), started
    on first use so a client that never predicts starts no threads and opens no log.

    Args:
        store: Opens (or returns the process's shared) metadata store, when a call first
            needs it.
        models: Loads the versions a deployment serves.
        predictions: The folder of this process's prediction log.
        quick: Reads on a bare connection to the same SQLite file, for the lookups and the
            listing (:mod:`opsloop.serving.quick_reads`): ``deployments list`` opens no store.
        shared: Opens the log's shared store and stream (None: the log is this host's only),
            when the log is first opened.
    """

    def __init__(
        self,
        store: Callable[[], Store],
        models: ModelSource,
        predictions: Path,
        quick: DeploymentReads | None = None,
        shared: Callable[[], SharedLog | None] = lambda: None,
    ) -> None:
        self._open_store = store
        self._quick = quick
        self._shared = shared
        self._models = models
        self._predictions = predictions
        self._runtime: ServingRuntime | None = None
        self._runtime_lock = threading.Lock()

    @cached_property
    def store(self) -> Store:  # type: ignore[override]  (StoreCalls declares the attribute)
        return self._open_store()

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

                log = PredictionLog(
                    self._predictions, masking=IngestMasking(self.store), shared=self._shared()
                )
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
        if self._quick is not None:
            return self._quick.get_deployment(name)
        from opsloop.serving import services

        return self._read(services.get_deployment, name)

    def list(self) -> list[Deployment]:
        if self._quick is not None:
            return self._quick.list_deployments()
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
        if self._quick is not None:
            return self._quick.deployment_events(name)
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
