"""The remote data backend: version metadata over the REST API, blobs over ``/api/blobs``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, TypeAdapter

from opsloop.data.backend import DataBackend
from opsloop.data.entities import (
    DataDiff,
    Dataset,
    DatasetVersion,
    LineageLink,
    ManifestFiles,
    VersionCreate,
)
from opsloop.data.manifest import FileEntry, Manifest
from opsloop.data.schemas import AliasSet, LineageCreate, ValidationRecord, VersionCreated
from opsloop.kernel.paging import Page
from opsloop.kernel.refs import parse_ref
from opsloop.kernel.transport import HttpTransport
from opsloop.store.http_blobs import HttpBlobRemote
from opsloop.tracking.schemas import TagValue

__all__ = ["HttpDataBackend"]

_JSON = {"Content-Type": "application/json"}
_LINKS = TypeAdapter(list[LineageLink])


def _version_path(ref: str) -> str:
    parsed = parse_ref(ref)
    selector = parsed.number if parsed.number is not None else parsed.alias
    return f"/api/datasets/{quote(parsed.name)}/versions/{quote(str(selector))}"


class HttpDataBackend(DataBackend):
    """Data versions over HTTP; errors come back as the same ``OpsloopError`` classes."""

    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport
        self.remote = HttpBlobRemote(transport)

    def _send(self, method: str, path: str, body: BaseModel | None = None, **kw: Any) -> bytes:
        if body is not None:
            kw["content"] = body.model_dump_json(exclude_none=True)
            kw["headers"] = _JSON
        return self.http.request(method, path, **kw).content

    def register_version(self, name: str, body: VersionCreate) -> tuple[DatasetVersion, bool]:
        raw = self._send("POST", f"/api/datasets/{quote(name)}/versions", body)
        created = VersionCreated.model_validate_json(raw)
        return created.version, created.created

    def get_version(self, ref: str) -> DatasetVersion:
        return DatasetVersion.model_validate_json(self._send("GET", _version_path(ref)))

    def get_manifest(self, ref: str) -> tuple[DatasetVersion, Manifest]:
        raw = ManifestFiles.model_validate_json(self._send("GET", _version_path(ref) + "/manifest"))
        return raw.version, Manifest([FileEntry(p, d, s) for p, d, s in raw.files])

    def get_dataset(self, name: str) -> Dataset:
        return Dataset.model_validate_json(self._send("GET", f"/api/datasets/{quote(name)}"))

    def list_datasets(self, max_results: int, page_token: str | None) -> Page[Dataset]:
        params: dict[str, Any] = {"max_results": max_results}
        if page_token:
            params["page_token"] = page_token
        raw = self._send("GET", "/api/datasets", params=params)
        return Page[Dataset].model_validate_json(raw)

    def list_versions(
        self, name: str, max_results: int, page_token: str | None
    ) -> Page[DatasetVersion]:
        params: dict[str, Any] = {"max_results": max_results}
        if page_token:
            params["page_token"] = page_token
        raw = self._send("GET", f"/api/datasets/{quote(name)}/versions", params=params)
        return Page[DatasetVersion].model_validate_json(raw)

    def diff(self, old_ref: str, new_ref: str) -> DataDiff:
        raw = self._send("GET", "/api/dataset-diffs", params={"old": old_ref, "new": new_ref})
        return DataDiff.model_validate_json(raw)

    def set_alias(self, ref: str, alias: str) -> DatasetVersion:
        number = self.get_version(ref).number
        name = parse_ref(ref).name
        path = f"/api/datasets/{quote(name)}/aliases/{quote(alias)}"
        return DatasetVersion.model_validate_json(self._send("PUT", path, AliasSet(version=number)))

    def delete_alias(self, name: str, alias: str) -> None:
        self._send("DELETE", f"/api/datasets/{quote(name)}/aliases/{quote(alias)}")

    def set_tag(self, ref: str, key: str, value: str) -> DatasetVersion:
        path = f"{_version_path(ref)}/tags/{quote(key)}"
        return DatasetVersion.model_validate_json(self._send("PUT", path, TagValue(value=value)))

    def record_validation(self, ref: str, report: dict[str, Any], passed: bool) -> DatasetVersion:
        body = ValidationRecord(report=report, passed=passed)
        raw = self._send("PUT", _version_path(ref) + "/validation", body)
        return DatasetVersion.model_validate_json(raw)

    def get_validation(self, ref: str) -> dict[str, Any]:
        return self.http.json("GET", _version_path(ref) + "/validation")  # type: ignore[no-any-return]

    def log_lineage(self, run_id: str, ref: str, relation: str) -> DatasetVersion:
        body = LineageCreate(ref=ref, relation=relation)
        raw = self._send("POST", f"/api/runs/{quote(run_id)}/datasets", body)
        return DatasetVersion.model_validate_json(raw)

    def lineage(self, ref: str) -> list[LineageLink]:
        return _LINKS.validate_json(self._send("GET", _version_path(ref) + "/lineage"))
