"""The tracking backend contract: what the SDK needs from a store, local or remote.

Two implementations pass one conformance suite (``tests/tracking/test_client_conformance.py``):
:class:`~opsloop.tracking.local.LocalTrackingBackend` calls the services in-process,
:class:`~opsloop.tracking.remote.RemoteTrackingBackend` calls the REST API, which calls the
same services. The interface is deliberately thin; conveniences (buffering, artifact helpers,
name resolution) are written once, in :class:`~opsloop.tracking.sdk.TrackingClient`.

Contract: methods are thread-safe; returned entities are immutable snapshots; errors are
``OpsloopError`` subclasses, the same class whichever backend raised them; every write is
durable when the method returns. Each method's docstring names the errors it raises on
purpose; any method may also raise ``StoreError`` (the database, blob store or server failed;
retrying may help) and, over HTTP, ``Unauthenticated`` or ``PermissionDenied``.

Every method taking an existing run's ``run_id`` also accepts a unique prefix of at least six
characters (what the CLI prints): a shorter one is ``InvalidInput``, one that several runs share
is ``Conflict`` (``details`` name the candidates). Returned entities carry the full id.

A batch of writes and a run search travel as their REST request bodies (``LogBatch``,
``SearchRuns``): one object from the SDK down to the services, not the same six parameters
in every layer. The SDK builds them unchecked (``model_construct``); each backend checks
them as the server does.
"""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.kernel.paging import Page
from opsloop.tracking.entities import Artifact
from opsloop.tracking.entities import ArtifactSpec
from opsloop.tracking.entities import Experiment
from opsloop.tracking.entities import MetricHistory
from opsloop.tracking.entities import Run
from opsloop.tracking.entities import RunInfo
from opsloop.tracking.schemas import LogBatch
from opsloop.tracking.schemas import SearchRuns

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
    ) -> Experiment:
        """Create an experiment. ``InvalidInput`` for a malformed name or tag, ``Conflict`` when
        an experiment (active or deleted) already has the name."""

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment:
        """One experiment by id (deleted ones too). ``NotFound`` when there is none."""

    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment:
        """One experiment by name (deleted ones too). ``NotFound`` when there is none."""

    @abstractmethod
    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment with this name, created when missing (idempotent). ``Conflict`` when
        it is deleted, ``InvalidInput`` for a malformed name."""

    @abstractmethod
    def list_experiments(
        self, view: str, max_results: int, page_token: str | None
    ) -> Page[Experiment]:
        """One page of experiments by name; ``view`` is ``active``, ``deleted`` or ``all``.
        ``InvalidInput`` for an unknown view or a page token not handed out by a listing."""

    @abstractmethod
    def update_experiment(
        self, experiment_id: str, name: str | None, description: str | None
    ) -> Experiment:
        """Rename an experiment and/or change its description (``None`` leaves a field alone).
        ``NotFound``; ``Conflict`` when the new name is taken; ``InvalidInput`` for a bad name."""

    @abstractmethod
    def set_experiment_lifecycle(self, experiment_id: str, deleted: bool) -> Experiment:
        """Mark the experiment deleted (its runs stay) or restore it. ``NotFound``."""

    @abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        """Set or overwrite one experiment tag. ``NotFound``; ``InvalidInput`` for a bad key."""

    # -- runs ---------------------------------------------------------------------------------
    @abstractmethod
    def create_run(self, experiment_id: str, **fields: Any) -> Run:
        """Start a RUNNING run. Fields: run_id, run_name, tags, parent_run_id, start_time,
        user_id. A ``run_id`` that exists in the same experiment returns that run (a retry is
        harmless). ``NotFound`` (experiment, parent run); ``Conflict`` when the experiment is
        deleted or ``run_id`` is in another one; ``InvalidInput`` for a malformed id, name or
        tag."""

    @abstractmethod
    def get_run(self, run_id: str) -> Run:
        """One run with its params, tags and latest metrics. ``NotFound``; ``InvalidInput`` for
        a malformed or too short id; ``Conflict`` for an ambiguous prefix."""

    @abstractmethod
    def update_run(self, run_id: str, **fields: Any) -> RunInfo:
        """Change a run. Fields: status (a terminal one stamps ``end_time``), end_time,
        run_name, notes. ``NotFound``; ``InvalidInput`` for an unknown status or bad name."""

    @abstractmethod
    def set_run_lifecycle(self, run_id: str, deleted: bool) -> RunInfo:
        """Mark the run deleted (out of listings and searches) or restore it. ``NotFound``."""

    @abstractmethod
    def log_batch(self, run_id: str, batch: LogBatch) -> int:
        """Log the batch's metrics, params and tags in one transaction; the number of metric
        points logged. Params and metrics need a RUNNING run, tags do not. ``NotFound``;
        ``Conflict`` when the run is finished or deleted or a param already holds another
        value; ``InvalidInput`` for a malformed key, a non-finite metric or ragged columns."""

    @abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove one run tag. ``NotFound`` when the run or the tag does not exist."""

    @abstractmethod
    def get_metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> MetricHistory:
        """Every point of one metric by step, thinned to about ``max_points`` for plotting.
        ``NotFound`` (run or metric); ``InvalidInput`` when ``max_points`` is below 4."""

    @abstractmethod
    def search_runs(self, query: SearchRuns) -> Page[Run]:
        """One page of the experiments' runs matching ``query.filter``, in ``query.order_by``
        order. ``InvalidInput`` for a bad filter, ordering, view, page size or page token, or
        no experiment id."""

    # -- artifacts ----------------------------------------------------------------------------
    # Blobs move through ``blobs`` (the store itself, or the server's blob API): the same three
    # calls whichever backend holds them.
    def missing_blobs(self, digests: list[str]) -> list[str]:
        """The digests the blob store lacks (upload only those). ``InvalidInput`` for a
        malformed digest."""
        return self.blobs.missing(digests)

    def upload_blob(self, digest: str, path: Path) -> None:
        """Store a file's bytes under ``digest``. ``InvalidInput`` when they do not hash to it."""
        self.blobs.put_file(path, digest)

    def download_blob(self, digest: str, dest: Path) -> None:
        """Write the blob to ``dest`` atomically (never a half-written file). ``NotFound``."""
        self.blobs.get_file(digest, dest)

    @abstractmethod
    def register_artifacts(self, run_id: str, specs: list[ArtifactSpec]) -> list[Artifact]:
        """Attach uploaded blobs to a RUNNING run under the given paths (replacing what was
        there). ``NotFound``; ``Conflict`` when the run is finished or deleted; ``InvalidInput``
        for a path outside the run folder, a malformed digest or a blob not uploaded."""

    @abstractmethod
    def list_artifacts(self, run_id: str, prefix: str | None) -> list[Artifact]:
        """The run's artifacts (under the folder ``prefix`` when given), by path. ``NotFound``;
        ``InvalidInput`` for a malformed prefix."""

    def close(self) -> None:  # noqa: B027 - optional hook: most backends hold nothing
        """Release connections; the backend is unusable afterwards."""
