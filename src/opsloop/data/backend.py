"""The data backend contract: what the data SDK needs from the store, local or remote.

Hashing, caching and moving bytes happen in the SDK, next to the files; a backend only
records and answers questions about versions. :class:`~opsloop.data.local.LocalDataBackend`
calls the services in-process, :class:`~opsloop.data.remote.RemoteDataBackend` the REST API;
one conformance suite runs against both.

Contract: methods are thread-safe; returned entities are immutable snapshots (a version's files
never change; its tags, aliases and validation verdict may, so read it again to see them);
errors are ``OpsloopError`` subclasses, the same class whichever backend raised them; every
write is durable when the method returns. A ``ref`` is ``NAME@N``, ``NAME@ALIAS`` or ``NAME``
(the latest version): a malformed one is ``InvalidInput``, an unknown dataset, number or alias
``NotFound``. Each method's docstring names the errors it raises on purpose; any method may also
raise ``StoreError`` (the database, blob store or server failed; retrying may help) and, over
HTTP, ``Unauthenticated`` or ``PermissionDenied``.
"""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from opsloop.data.duplicates.entities import DedupRequest
from opsloop.data.duplicates.entities import DedupResult
from opsloop.data.duplicates.entities import OverlapRequest
from opsloop.data.entities import DataDiff
from opsloop.data.entities import Dataset
from opsloop.data.entities import DatasetVersion
from opsloop.data.entities import LineageLink
from opsloop.data.entities import VersionCreate
from opsloop.data.manifest import Manifest
from opsloop.kernel.paging import Page
from opsloop.store.blobs import BlobRemote

__all__ = ["BlobRemote", "DataBackend", "DedupBackend"]


class DataBackend(ABC):
    """Dataset versions' metadata; see the module docstring for the contract."""

    remote: BlobRemote  # the blob store, or the server's blob API: where versions' bytes are shared

    @abstractmethod
    def register_version(self, name: str, body: VersionCreate) -> tuple[DatasetVersion, bool]:
        """Register ``body``'s manifest as the next version of ``name`` (the dataset is
        created on first use); its blobs must be in :attr:`remote` already. The new version,
        or the dataset's existing one with identical files, and whether it was created.
        ``InvalidInput`` for a malformed name, kind, tag or manifest (bad digest or path, a path
        twice, no files)."""

    @abstractmethod
    def get_version(self, ref: str) -> DatasetVersion:
        """The version ``ref`` names. ``NotFound``; ``InvalidInput`` for a malformed ref."""

    @abstractmethod
    def get_manifest(self, ref: str) -> tuple[DatasetVersion, Manifest]:
        """The version ``ref`` names and its manifest (every file's path, digest and size).
        ``NotFound``; ``InvalidInput`` for a malformed ref."""

    @abstractmethod
    def get_dataset(self, name: str) -> Dataset:
        """One dataset with its aliases. ``NotFound``; ``InvalidInput`` for a malformed name."""

    @abstractmethod
    def list_datasets(self, max_results: int, page_token: str | None) -> Page[Dataset]:
        """One page of datasets. ``InvalidInput`` for a page token not handed out by a
        listing."""

    @abstractmethod
    def list_versions(
        self, name: str, max_results: int, page_token: str | None
    ) -> Page[DatasetVersion]:
        """One page of a dataset's versions, newest first. ``NotFound`` for an unknown
        dataset; ``InvalidInput`` for a malformed name or page token."""

    @abstractmethod
    def diff(self, old_ref: str, new_ref: str) -> DataDiff:
        """Files added, removed and modified from ``old_ref`` to ``new_ref``; for tables also
        the schema, row count and column statistics that changed. ``NotFound``;
        ``InvalidInput`` for a malformed ref."""

    @abstractmethod
    def set_alias(self, ref: str, alias: str) -> DatasetVersion:
        """Point ``alias`` at the version ``ref`` names (moving it if it pointed elsewhere);
        that version. ``NotFound``; ``InvalidInput`` for a malformed ref or alias."""

    @abstractmethod
    def delete_alias(self, name: str, alias: str) -> None:
        """Remove one alias of dataset ``name``. ``NotFound`` when the dataset or the alias does
        not exist; ``InvalidInput`` for a malformed name or alias."""

    @abstractmethod
    def set_tag(self, ref: str, key: str, value: str) -> DatasetVersion:
        """Set or overwrite one tag of the version; the version. ``NotFound``;
        ``InvalidInput`` for a malformed ref or key."""

    @abstractmethod
    def record_validation(self, ref: str, report: dict[str, Any], passed: bool) -> DatasetVersion:
        """Store a validation report on the version, marking it passed or failed (replacing
        an earlier report); the version. ``NotFound``; ``InvalidInput`` for a malformed ref."""

    @abstractmethod
    def get_validation(self, ref: str) -> dict[str, Any]:
        """The version's last validation report. ``NotFound`` when the version does not exist
        or was never validated; ``InvalidInput`` for a malformed ref."""

    @abstractmethod
    def log_lineage(self, run_id: str, ref: str, relation: str) -> DatasetVersion:
        """Record that run ``run_id`` consumed (``relation="input"``) or produced
        (``"output"``) the version; the version. ``NotFound`` (run or version);
        ``InvalidInput`` for another relation, a malformed run id or ref."""

    @abstractmethod
    def lineage(self, ref: str) -> list[LineageLink]:
        """The runs that consumed and produced the version. ``NotFound``; ``InvalidInput`` for
        a malformed ref."""


class DedupBackend(ABC):
    """Deduplication and overlap of table versions, run where the blobs are (in-process, or
    on the server): a contract apart from :class:`DataBackend` so a backend that only records
    versions (the reproduction's held one) need not implement it. Errors as there; the blobs
    of the versions read must be in the blob store (``Conflict`` naming the push otherwise)."""

    @abstractmethod
    def dedup(
        self, request: DedupRequest, on_rows: Callable[[int], None] | None = None
    ) -> DedupResult:
        """Write the rows of ``request.ref`` that are not duplicates as the next version
        (with a ``deduplicated`` lineage edge and the report); no version when none is.
        ``on_rows`` hears rows hashed (in-process only). ``NotFound``; ``InvalidInput`` for a
        version that is not a table, a missing or non-text column, bytes that are not UTF-8,
        a threshold outside (0, 1] or another bad option."""

    @abstractmethod
    def dedup_report(self, ref: str) -> dict[str, Any]:
        """The report of a version ``dedup`` made. ``NotFound`` for any other version."""

    @abstractmethod
    def overlap(self, request: OverlapRequest) -> dict[str, Any]:
        """Share of ``request.eval``'s rows with a duplicate in ``request.train``, with
        ``passed`` against ``max_rate``. Errors as :meth:`dedup`."""
