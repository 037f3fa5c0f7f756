"""The remote registry backend: the REST API; package bytes go through ``/api/blobs``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, TypeAdapter

from opsloop.data.manifest import FileEntry, Manifest
from opsloop.kernel.paging import Page
from opsloop.kernel.refs import parse_ref
from opsloop.kernel.transport import HttpTransport
from opsloop.registry.backend import RegistryBackend
from opsloop.registry.entities import AliasEvent, ModelVersion, ModelVersionCreate, RegisteredModel
from opsloop.registry.evaluations import Evaluation
from opsloop.registry.schemas import (
    AliasMove,
    EvaluationCreate,
    ModelCreate,
    ModelUpdate,
    PromotionRequest,
    VersionUpdate,
)
from opsloop.tracking.schemas import TagValue

__all__ = ["HttpRegistryBackend", "version_path"]

_JSON = {"Content-Type": "application/json"}
_EVENTS = TypeAdapter(list[AliasEvent])
_EVALUATIONS = TypeAdapter(list[Evaluation])


def version_path(ref: str) -> str:
    parsed = parse_ref(ref, "model")
    selector = parsed.number if parsed.number is not None else parsed.alias
    return f"/api/models/{quote(parsed.name)}/versions/{quote(str(selector))}"


class HttpRegistryBackend(RegistryBackend):
    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport

    def _send(self, method: str, path: str, body: BaseModel | None = None, **kw: Any) -> bytes:
        if body is not None:
            kw["content"] = body.model_dump_json(exclude_none=True)
            kw["headers"] = _JSON
        return self.http.request(method, path, **kw).content

    def _page(self, max_results: int, page_token: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"max_results": max_results}
        if page_token:
            params["page_token"] = page_token
        return params

    def create_model(
        self, name: str, description: str | None, tags: dict[str, str] | None
    ) -> RegisteredModel:
        body = ModelCreate(name=name, description=description, tags=tags)
        return RegisteredModel.model_validate_json(self._send("POST", "/api/models", body))

    def get_model(self, name: str) -> RegisteredModel:
        return RegisteredModel.model_validate_json(self._send("GET", f"/api/models/{quote(name)}"))

    def list_models(self, max_results: int, page_token: str | None) -> Page[RegisteredModel]:
        raw = self._send("GET", "/api/models", params=self._page(max_results, page_token))
        return Page[RegisteredModel].model_validate_json(raw)

    def update_model(
        self, name: str, description: str | None, gate_policy: dict[str, Any] | None
    ) -> RegisteredModel:
        body = ModelUpdate(description=description, gate_policy=gate_policy)
        raw = self._send("PATCH", f"/api/models/{quote(name)}", body)
        return RegisteredModel.model_validate_json(raw)

    def delete_model(self, name: str) -> None:
        self._send("DELETE", f"/api/models/{quote(name)}")

    def set_model_tag(self, name: str, key: str, value: str) -> RegisteredModel:
        path = f"/api/models/{quote(name)}/tags/{quote(key)}"
        return RegisteredModel.model_validate_json(self._send("PUT", path, TagValue(value=value)))

    def register_version(self, name: str, body: ModelVersionCreate) -> ModelVersion:
        raw = self._send("POST", f"/api/models/{quote(name)}/versions", body)
        return ModelVersion.model_validate_json(raw)

    def get_version(self, ref: str) -> ModelVersion:
        return ModelVersion.model_validate_json(self._send("GET", version_path(ref)))

    def get_manifest(self, ref: str) -> tuple[ModelVersion, Manifest]:
        version = self.get_version(ref)
        rows = self.http.json("GET", version_path(version.ref) + "/manifest")
        return version, Manifest([FileEntry(p, d, s) for p, d, s in rows])

    def list_versions(
        self, name: str, max_results: int, page_token: str | None
    ) -> Page[ModelVersion]:
        path = f"/api/models/{quote(name)}/versions"
        raw = self._send("GET", path, params=self._page(max_results, page_token))
        return Page[ModelVersion].model_validate_json(raw)

    def update_version(
        self, ref: str, description: str | None, card: dict[str, str] | None
    ) -> ModelVersion:
        body = VersionUpdate(description=description, card=card)
        return ModelVersion.model_validate_json(self._send("PATCH", version_path(ref), body))

    def set_version_tag(self, ref: str, key: str, value: str) -> ModelVersion:
        path = f"{version_path(ref)}/tags/{quote(key)}"
        return ModelVersion.model_validate_json(self._send("PUT", path, TagValue(value=value)))

    def delete_version(self, ref: str) -> None:
        self._send("DELETE", version_path(ref))

    def set_alias(self, ref: str, alias: str, reason: str | None) -> ModelVersion:
        version = self.get_version(ref)
        path = f"/api/models/{quote(version.name)}/aliases/{quote(alias)}"
        body = AliasMove(version=version.number, reason=reason)
        return ModelVersion.model_validate_json(self._send("PUT", path, body))

    def delete_alias(self, name: str, alias: str) -> None:
        self._send("DELETE", f"/api/models/{quote(name)}/aliases/{quote(alias)}")

    def alias_history(self, name: str, alias: str | None) -> list[AliasEvent]:
        params = {"alias": alias} if alias else {}
        raw = self._send("GET", f"/api/models/{quote(name)}/alias-history", params=params)
        return _EVENTS.validate_json(raw)

    def record_evaluation(
        self, report: dict[str, Any], model_ref: str | None, dataset_ref: str | None
    ) -> Evaluation:
        body = EvaluationCreate(report=report, model_ref=model_ref, dataset_ref=dataset_ref)
        return Evaluation.model_validate_json(self._send("POST", "/api/evaluations", body))

    def get_evaluation(self, evaluation_id: str) -> Evaluation:
        raw = self._send("GET", f"/api/evaluations/{quote(evaluation_id)}")
        return Evaluation.model_validate_json(raw)

    def list_evaluations(self, ref: str) -> list[Evaluation]:
        return _EVALUATIONS.validate_json(self._send("GET", version_path(ref) + "/evaluations"))

    def promote(
        self,
        ref: str,
        alias: str,
        policy: dict[str, Any] | None,
        force: bool,
        reason: str | None,
    ) -> AliasEvent:
        body = PromotionRequest(alias=alias, policy=policy, force=force, reason=reason)
        raw = self._send("POST", version_path(ref) + "/promote", body)
        return AliasEvent.model_validate_json(raw)

    def card(self, ref: str, markdown: bool) -> Any:
        params = {"format": "markdown" if markdown else "json"}
        response = self.http.request("GET", version_path(ref) + "/card", params=params)
        return response.text if markdown else response.json()

    def lineage(self, kind: str, ref: str) -> dict[str, Any]:
        return self.http.json("GET", "/api/lineage", params={"kind": kind, "ref": ref})  # type: ignore[no-any-return]
