"""The in-process data backend: each call is one transaction over the services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opsloop.data import compare
from opsloop.data import links
from opsloop.data import versions
from opsloop.data.backend import DataBackend
from opsloop.data.backend import DedupBackend
from opsloop.data.duplicates.entities import DedupRequest
from opsloop.data.duplicates.entities import DedupResult
from opsloop.data.duplicates.entities import OverlapRequest
from opsloop.data.duplicates.ports import Embedder
from opsloop.data.entities import DataDiff
from opsloop.data.entities import Dataset
from opsloop.data.entities import DatasetVersion
from opsloop.data.entities import LineageLink
from opsloop.data.entities import VersionCreate
from opsloop.data.links import NodeLabels
from opsloop.data.manifest import Manifest
from opsloop.kernel.identity import current_user
from opsloop.kernel.paging import Page
from opsloop.kernel.store_calls import StoreCalls
from opsloop.store.blobs import BlobStore
from opsloop.store.database import Store

__all__ = ["LocalDataBackend"]


class LocalDataBackend(StoreCalls, DataBackend, DedupBackend):
    """Versions in the metadata store; blobs shared through the configured blob store."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        lineage: Callable[[], NodeLabels] | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.store = store
        self.remote = blobs
        # names other domains' lineage nodes (the catalog): built when a walk first needs it,
        # as gathering it imports every domain's services (a model load never walks)
        self._lineage_labels = lineage
        self.embedder = embedder  # for semantic dedup: handed in by the client (llm floor)

    def register_version(self, name: str, body: VersionCreate) -> tuple[DatasetVersion, bool]:
        return self._write(versions.register_version, name, body, current_user())

    def get_version(self, ref: str) -> DatasetVersion:
        return self._read(versions.get_version, ref)

    def get_manifest(self, ref: str) -> tuple[DatasetVersion, Manifest]:
        return self._read(versions.get_manifest, ref)

    def get_dataset(self, name: str) -> Dataset:
        return self._read(versions.get_dataset, name)

    def list_datasets(self, max_results: int, page_token: str | None) -> Page[Dataset]:
        return self._read(versions.list_datasets, max_results, page_token)

    def list_versions(
        self, name: str, max_results: int, page_token: str | None
    ) -> Page[DatasetVersion]:
        return self._read(versions.list_versions, name, max_results, page_token)

    def diff(self, old_ref: str, new_ref: str) -> DataDiff:
        return self._read(compare.diff_versions, old_ref, new_ref)

    def set_alias(self, ref: str, alias: str) -> DatasetVersion:
        return self._write(versions.set_alias, ref, alias)

    def delete_alias(self, name: str, alias: str) -> None:
        self._write(versions.delete_alias, name, alias)

    def set_tag(self, ref: str, key: str, value: str) -> DatasetVersion:
        return self._write(versions.set_version_tag, ref, key, value)

    def record_validation(self, ref: str, report: dict[str, Any], passed: bool) -> DatasetVersion:
        return self._write(versions.record_validation, ref, report, passed)

    def get_validation(self, ref: str) -> dict[str, Any]:
        return self._read(versions.get_validation, ref)

    def log_lineage(self, run_id: str, ref: str, relation: str) -> DatasetVersion:
        return self._write(versions.log_lineage, run_id, ref, relation)

    def lineage(self, ref: str) -> list[LineageLink]:
        labels = self._lineage_labels() if self._lineage_labels is not None else None
        return self._read(links.version_lineage, ref, labels)

    def dedup(
        self, request: DedupRequest, on_rows: Callable[[int], None] | None = None
    ) -> DedupResult:
        from opsloop.data.duplicates import service as duplicates  # numpy: only when asked

        return duplicates.dedup_version(
            self.store, self.remote, request, current_user(), on_rows, self.embedder
        )

    def dedup_report(self, ref: str) -> dict[str, Any]:
        from opsloop.data.duplicates import service as duplicates  # numpy: only when asked

        return duplicates.dedup_report(self.store, self.remote, ref)

    def overlap(self, request: OverlapRequest) -> dict[str, Any]:
        from opsloop.data.duplicates import service as duplicates  # numpy: only when asked

        return duplicates.overlap_versions(self.store, self.remote, request)
