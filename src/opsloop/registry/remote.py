"""The remote registry backend: the REST API; package bytes go through ``/api/blobs``."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from opsloop.data.manifest import FileEntry
from opsloop.data.manifest import Manifest
from opsloop.kernel.paging import Page
from opsloop.kernel.paging import page_query
from opsloop.kernel.refs import parse_ref
from opsloop.kernel.transport import HttpTransport
from opsloop.lineage import routes as lineage_routes
from opsloop.registry import routes
from opsloop.registry.backend import RegistryBackend
from opsloop.registry.compression_schemas import CompressionRequest
from opsloop.registry.compression_schemas import CompressionResult
from opsloop.registry.entities import AliasEvent
from opsloop.registry.entities import ModelVersion
from opsloop.registry.entities import ModelVersionCreate
from opsloop.registry.entities import RegisteredModel
from opsloop.registry.evaluations import Evaluation
from opsloop.registry.schemas import AliasMove
from opsloop.registry.schemas import EvaluationCreate
from opsloop.registry.schemas import ModelCreate
from opsloop.registry.schemas import ModelUpdate
from opsloop.registry.schemas import PromotionRequest
from opsloop.registry.schemas import VersionUpdate
from opsloop.tracking.schemas import TagValue

__all__ = ["RemoteRegistryBackend"]

_EVENTS = TypeAdapter(list[AliasEvent])
_EVALUATIONS = TypeAdapter(list[Evaluation])


def _version(ref: str) -> dict[str, object]:
    return parse_ref(ref, "model").route_params()


class RemoteRegistryBackend(RegistryBackend):
    """The registry over HTTP; errors come back as the same ``OpsloopError`` classes."""

    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport

    def create_model(
        self, name: str, description: str | None, tags: dict[str, str] | None
    ) -> RegisteredModel:
        body = ModelCreate(name=name, description=description, tags=tags)
        return RegisteredModel.model_validate_json(
            self.http.send("POST", routes.MODELS.url(), body)
        )

    def get_model(self, name: str) -> RegisteredModel:
        return RegisteredModel.model_validate_json(
            self.http.send("GET", routes.MODEL.url(name=name))
        )

    def list_models(self, max_results: int, page_token: str | None) -> Page[RegisteredModel]:
        raw = self.http.send("GET", routes.MODELS.url(), params=page_query(max_results, page_token))
        return Page[RegisteredModel].model_validate_json(raw)

    def update_model(
        self, name: str, description: str | None, gate_policy: dict[str, Any] | None
    ) -> RegisteredModel:
        body = ModelUpdate(description=description, gate_policy=gate_policy)
        raw = self.http.send("PATCH", routes.MODEL.url(name=name), body)
        return RegisteredModel.model_validate_json(raw)

    def delete_model(self, name: str) -> None:
        self.http.send("DELETE", routes.MODEL.url(name=name))

    def set_model_tag(self, name: str, key: str, value: str) -> RegisteredModel:
        raw = self.http.send("PUT", routes.MODEL_TAG.url(name=name, key=key), TagValue(value=value))
        return RegisteredModel.model_validate_json(raw)

    def register_version(self, name: str, body: ModelVersionCreate) -> ModelVersion:
        raw = self.http.send("POST", routes.VERSIONS.url(name=name), body)
        return ModelVersion.model_validate_json(raw)

    def get_version(self, ref: str) -> ModelVersion:
        return ModelVersion.model_validate_json(
            self.http.send("GET", routes.VERSION.url(**_version(ref)))
        )

    def get_manifest(self, ref: str) -> tuple[ModelVersion, Manifest]:
        version = self.get_version(ref)
        rows = self.http.json("GET", routes.VERSION_MANIFEST.url(**_version(version.ref)))
        return version, Manifest([FileEntry(p, d, s) for p, d, s in rows])

    def list_versions(
        self, name: str, max_results: int, page_token: str | None
    ) -> Page[ModelVersion]:
        params = page_query(max_results, page_token)
        raw = self.http.send("GET", routes.VERSIONS.url(name=name), params=params)
        return Page[ModelVersion].model_validate_json(raw)

    def update_version(
        self, ref: str, description: str | None, card: dict[str, str] | None
    ) -> ModelVersion:
        body = VersionUpdate(description=description, card=card)
        return ModelVersion.model_validate_json(
            self.http.send("PATCH", routes.VERSION.url(**_version(ref)), body)
        )

    def set_version_tag(self, ref: str, key: str, value: str) -> ModelVersion:
        raw = self.http.send(
            "PUT", routes.VERSION_TAG.url(**_version(ref), key=key), TagValue(value=value)
        )
        return ModelVersion.model_validate_json(raw)

    def delete_version(self, ref: str) -> None:
        self.http.send("DELETE", routes.VERSION.url(**_version(ref)))

    def set_alias(self, ref: str, alias: str, reason: str | None) -> ModelVersion:
        version = self.get_version(ref)
        body = AliasMove(version=version.number, reason=reason)
        raw = self.http.send("PUT", routes.ALIAS.url(name=version.name, alias=alias), body)
        return ModelVersion.model_validate_json(raw)

    def delete_alias(self, name: str, alias: str) -> None:
        self.http.send("DELETE", routes.ALIAS.url(name=name, alias=alias))

    def alias_history(self, name: str, alias: str | None) -> list[AliasEvent]:
        params = {"alias": alias} if alias else {}
        raw = self.http.send("GET", routes.ALIAS_HISTORY.url(name=name), params=params)
        return _EVENTS.validate_json(raw)

    def record_evaluation(
        self, report: dict[str, Any], model_ref: str | None, dataset_ref: str | None
    ) -> Evaluation:
        body = EvaluationCreate(report=report, model_ref=model_ref, dataset_ref=dataset_ref)
        return Evaluation.model_validate_json(
            self.http.send("POST", routes.EVALUATIONS.url(), body)
        )

    def get_evaluation(self, evaluation_id: str) -> Evaluation:
        raw = self.http.send("GET", routes.EVALUATION.url(evaluation_id=evaluation_id))
        return Evaluation.model_validate_json(raw)

    def list_evaluations(self, ref: str) -> list[Evaluation]:
        raw = self.http.send("GET", routes.VERSION_EVALUATIONS.url(**_version(ref)))
        return _EVALUATIONS.validate_json(raw)

    def promote(self, ref: str, request: PromotionRequest) -> AliasEvent:
        body = PromotionRequest(**dict(request))  # built unchecked by the SDK: checked here
        raw = self.http.send("POST", routes.VERSION_PROMOTE.url(**_version(ref)), body)
        return AliasEvent.model_validate_json(raw)

    def compress(self, ref: str, request: CompressionRequest) -> CompressionResult:
        raw = self.http.send("POST", routes.VERSION_COMPRESS.url(**_version(ref)), request)
        return CompressionResult.model_validate_json(raw)

    def card(self, ref: str, markdown: bool) -> Any:
        params = {"format": "markdown" if markdown else "json"}
        response = self.http.request("GET", routes.VERSION_CARD.url(**_version(ref)), params=params)
        return response.text if markdown else response.json()

    def lineage(self, kind: str | None, ref: str) -> dict[str, Any]:
        params = {"ref": ref} if kind is None else {"kind": kind, "ref": ref}
        return self.http.json("GET", lineage_routes.LINEAGE.url(), params=params)  # type: ignore[no-any-return]
