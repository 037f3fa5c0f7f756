"""The tracking backend contract: what the SDK needs from a store, local or remote.

Two implementations pass one conformance suite (``tests/tracking/test_backends.py``):
:class:`~opsloop.tracking.local_backend.LocalTrackingBackend` calls the services in-process,
:class:`~opsloop.tracking.http_backend.HttpTrackingBackend` calls the REST API, which calls the
same services. The interface is deliberately thin; conveniences (buffering, artifact helpers,
name resolution) are written once, in :class:`~opsloop.tracking.sdk.TrackingClient`.

Contract: methods are thread-safe; returned entities are immutable snapshots; errors are
``OpsloopError`` subclasses, the same class whichever backend raised them; every write is
durable when the method returns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.kernel.paging import Page
from opsloop.tracking.entities import (
    Artifact,
    ArtifactSpec,
    Experiment,
    MetricBatch,
    MetricHistory,
    Run,
    RunInfo,
)

if TYPE_CHECKING:
    from opsloop.store.blobs import BlobRemote

__all__ = ["TrackingBackend"]


class TrackingBackend(ABC):
    """Experiments, runs, their data and artifacts. See the module docstring for the contract."""

    blobs: BlobRemote  # the blob store, or the server's blob API: for bulk transfers

    # -- experiments --------------------------------------------------------------------------
    @abstractmethod
    def create_experiment(
        self, name: str, description: str | None, tags: dict[str, str] | None
    ) -> Experiment: ...

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...

    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment: ...

    @abstractmethod
    def get_or_create_experiment(self, name: str) -> Experiment: ...

    @abstractmethod
    def list_experiments(
        self, view: str, max_results: int, page_token: str | None
    ) -> Page[Experiment]: ...

    @abstractmethod
    def update_experiment(
        self, experiment_id: str, name: str | None, description: str | None
    ) -> Experiment: ...

    @abstractmethod
    def set_experiment_lifecycle(self, experiment_id: str, deleted: bool) -> Experiment: ...

    @abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None: ...

    # -- runs ---------------------------------------------------------------------------------
    @abstractmethod
    def create_run(self, experiment_id: str, **fields: Any) -> Run:
        """Fields: run_id, run_name, tags, parent_run_id, start_time, user_id."""

    @abstractmethod
    def get_run(self, run_id: str) -> Run: ...

    @abstractmethod
    def update_run(self, run_id: str, **fields: Any) -> RunInfo:
        """Fields: status, end_time, run_name, notes."""

    @abstractmethod
    def set_run_lifecycle(self, run_id: str, deleted: bool) -> RunInfo: ...

    @abstractmethod
    def log_batch(
        self,
        run_id: str,
        metrics: MetricBatch | None,
        params: dict[str, Any] | None,
        tags: dict[str, Any] | None,
    ) -> int: ...

    @abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None: ...

    @abstractmethod
    def get_metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> MetricHistory: ...

    @abstractmethod
    def search_runs(
        self,
        experiment_ids: list[str],
        filter: str | None,
        order_by: list[str] | None,
        max_results: int,
        page_token: str | None,
        view: str,
    ) -> Page[Run]: ...

    # -- artifacts ----------------------------------------------------------------------------
    @abstractmethod
    def missing_blobs(self, digests: list[str]) -> list[str]: ...

    @abstractmethod
    def upload_blob(self, digest: str, path: Path) -> None: ...

    @abstractmethod
    def download_blob(self, digest: str, dest: Path) -> None:
        """Write the blob to ``dest`` atomically (never a half-written file)."""

    @abstractmethod
    def register_artifacts(self, run_id: str, specs: list[ArtifactSpec]) -> list[Artifact]: ...

    @abstractmethod
    def list_artifacts(self, run_id: str, prefix: str | None) -> list[Artifact]: ...

    def close(self) -> None:  # noqa: B027 - optional hook: most backends hold nothing
        """Release connections; the backend is unusable afterwards."""
