"""The data backend contract: what the data SDK needs from the store, local or remote.

Hashing, caching and moving bytes happen in the SDK, next to the files; a backend only
records and answers questions about versions. :class:`LocalDataBackend` calls the services
in-process, :class:`~opsloop.data.http_backend.HttpDataBackend` the REST API; one
conformance suite runs against both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from opsloop.data.entities import (
    DataDiff,
    Dataset,
    DatasetVersion,
    LineageLink,
    VersionCreate,
)
from opsloop.data.manifest import Manifest
from opsloop.kernel.paging import Page
from opsloop.store.blobs import BlobRemote

__all__ = ["BlobRemote", "DataBackend"]


class DataBackend(ABC):
    """Dataset versions' metadata; see the module docstring."""

    remote: BlobRemote

    @abstractmethod
    def register_version(self, name: str, body: VersionCreate) -> tuple[DatasetVersion, bool]:
        """The new (or identical existing) version, and whether it was created."""

    @abstractmethod
    def get_version(self, ref: str) -> DatasetVersion: ...

    @abstractmethod
    def get_manifest(self, ref: str) -> tuple[DatasetVersion, Manifest]: ...

    @abstractmethod
    def get_dataset(self, name: str) -> Dataset: ...

    @abstractmethod
    def list_datasets(self, max_results: int, page_token: str | None) -> Page[Dataset]: ...

    @abstractmethod
    def list_versions(
        self, name: str, max_results: int, page_token: str | None
    ) -> Page[DatasetVersion]: ...

    @abstractmethod
    def diff(self, old_ref: str, new_ref: str) -> DataDiff: ...

    @abstractmethod
    def set_alias(self, ref: str, alias: str) -> DatasetVersion: ...

    @abstractmethod
    def delete_alias(self, name: str, alias: str) -> None: ...

    @abstractmethod
    def set_tag(self, ref: str, key: str, value: str) -> DatasetVersion: ...

    @abstractmethod
    def record_validation(
        self, ref: str, report: dict[str, Any], passed: bool
    ) -> DatasetVersion: ...

    @abstractmethod
    def get_validation(self, ref: str) -> dict[str, Any]: ...

    @abstractmethod
    def log_lineage(self, run_id: str, ref: str, relation: str) -> DatasetVersion: ...

    @abstractmethod
    def lineage(self, ref: str) -> list[LineageLink]: ...
