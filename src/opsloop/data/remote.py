"""The remote data backend: version metadata over the REST API, blobs over ``/api/blobs``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter

from opsloop.data import routes
from opsloop.data.backend import DataBackend
from opsloop.data.backend import DedupBackend
from opsloop.data.duplicates.entities import DedupRequest
from opsloop.data.duplicates.entities import DedupResult
from opsloop.data.duplicates.entities import OverlapRequest
from opsloop.data.entities import DataDiff
from opsloop.data.entities import Dataset
from opsloop.data.entities import DatasetVersion
from opsloop.data.entities import LineageLink
from opsloop.data.entities import ManifestFiles
from opsloop.data.entities import VersionCreate
from opsloop.data.manifest import FileEntry
from opsloop.data.manifest import Manifest
from opsloop.data.schemas import AliasSet
from opsloop.data.schemas import LineageCreate
from opsloop.data.schemas import ValidationRecord
from opsloop.data.schemas import VersionCreated
from opsloop.kernel.paging import Page
from opsloop.kernel.paging import page_query
from opsloop.kernel.refs import parse_ref
from opsloop.kernel.transport import HttpTransport
from opsloop.store.http_blobs import HttpBlobRemote
from opsloop.tracking.schemas import TagValue

__all__ = ["RemoteDataBackend"]

_LINKS = TypeAdapter(list[LineageLink])


def _version(ref: str) -> dict[str, object]:
    return parse_ref(ref).route_params()


class RemoteDataBackend(DataBackend, DedupBackend):
    """Data versions over HTTP; errors come back as the same ``OpsloopError`` classes."""

    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport
        self.remote = HttpBlobRemote(transport)

    def register_version(self, name: str, body: VersionCreate) -> tuple[DatasetVersion, bool]:
        raw = self.http.send("POST", routes.VERSIONS.url(name=name), body)
        created = VersionCreated.model_validate_json(raw)
        return created.version, created.created

    def get_version(self, ref: str) -> DatasetVersion:
        return DatasetVersion.model_validate_json(
            self.http.send("GET", routes.VERSION.url(**_version(ref)))
        )

    def get_manifest(self, ref: str) -> tuple[DatasetVersion, Manifest]:
        raw = ManifestFiles.model_validate_json(
            self.http.send("GET", routes.VERSION_MANIFEST.url(**_version(ref)))
        )
        return raw.version, Manifest([FileEntry(p, d, s) for p, d, s in raw.files])

    def get_dataset(self, name: str) -> Dataset:
        return Dataset.model_validate_json(self.http.send("GET", routes.DATASET.url(name=name)))

    def list_datasets(self, max_results: int, page_token: str | None) -> Page[Dataset]:
        raw = self.http.send(
            "GET", routes.DATASETS.url(), params=page_query(max_results, page_token)
        )
        return Page[Dataset].model_validate_json(raw)

    def list_versions(
        self, name: str, max_results: int, page_token: str | None
    ) -> Page[DatasetVersion]:
        raw = self.http.send(
            "GET", routes.VERSIONS.url(name=name), params=page_query(max_results, page_token)
        )
        return Page[DatasetVersion].model_validate_json(raw)

    def diff(self, old_ref: str, new_ref: str) -> DataDiff:
        raw = self.http.send("GET", routes.DIFFS.url(), params={"old": old_ref, "new": new_ref})
        return DataDiff.model_validate_json(raw)

    def set_alias(self, ref: str, alias: str) -> DatasetVersion:
        number = self.get_version(ref).number
        name = parse_ref(ref).name
        raw = self.http.send(
            "PUT", routes.ALIAS.url(name=name, alias=alias), AliasSet(version=number)
        )
        return DatasetVersion.model_validate_json(raw)

    def delete_alias(self, name: str, alias: str) -> None:
        self.http.send("DELETE", routes.ALIAS.url(name=name, alias=alias))

    def set_tag(self, ref: str, key: str, value: str) -> DatasetVersion:
        raw = self.http.send(
            "PUT", routes.VERSION_TAG.url(**_version(ref), key=key), TagValue(value=value)
        )
        return DatasetVersion.model_validate_json(raw)

    def record_validation(self, ref: str, report: dict[str, Any], passed: bool) -> DatasetVersion:
        body = ValidationRecord(report=report, passed=passed)
        raw = self.http.send("PUT", routes.VERSION_VALIDATION.url(**_version(ref)), body)
        return DatasetVersion.model_validate_json(raw)

    def get_validation(self, ref: str) -> dict[str, Any]:
        return self.http.json("GET", routes.VERSION_VALIDATION.url(**_version(ref)))  # type: ignore[no-any-return]

    def log_lineage(self, run_id: str, ref: str, relation: str) -> DatasetVersion:
        body = LineageCreate(ref=ref, relation=relation)
        raw = self.http.send("POST", routes.RUN_DATASETS.url(run_id=run_id), body)
        return DatasetVersion.model_validate_json(raw)

    def lineage(self, ref: str) -> list[LineageLink]:
        return _LINKS.validate_json(
            self.http.send("GET", routes.VERSION_LINEAGE.url(**_version(ref)))
        )

    def dedup(
        self, request: DedupRequest, on_rows: Callable[[int], None] | None = None
    ) -> DedupResult:
        """The server does the work (``on_rows`` is not told: nothing streams back)."""
        # the same rows: the same version
        raw = self.http.send("POST", routes.DEDUPS.url(), request)
        return DedupResult.model_validate_json(raw)

    def dedup_report(self, ref: str) -> dict[str, Any]:
        return self.http.json("GET", routes.VERSION_DEDUP_REPORT.url(**_version(ref)))  # type: ignore[no-any-return]

    def overlap(self, request: OverlapRequest) -> dict[str, Any]:
        return json.loads(self.http.send("POST", routes.OVERLAPS.url(), request))  # type: ignore[no-any-return]
