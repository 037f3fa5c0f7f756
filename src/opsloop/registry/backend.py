"""The registry backend contract: what the models SDK needs from the store, local or remote.

Package bytes never pass through it: the SDK stores package files in the blob store (as data
versions do) and registers their manifest. :class:`LocalRegistryBackend` calls the services
in-process; :class:`~opsloop.registry.http_backend.HttpRegistryBackend` the REST API. Gated
promotion runs wherever the backend's services run (in-process, or on the server).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from opsloop.data.manifest import Manifest
from opsloop.kernel.paging import Page
from opsloop.registry.entities import AliasEvent, ModelVersion, ModelVersionCreate, RegisteredModel
from opsloop.registry.evaluations import Evaluation

__all__ = ["RegistryBackend"]


class RegistryBackend(ABC):
    """Registered models, versions, aliases, evaluations and promotions."""

    @abstractmethod
    def create_model(
        self, name: str, description: str | None, tags: dict[str, str] | None
    ) -> RegisteredModel: ...

    @abstractmethod
    def get_model(self, name: str) -> RegisteredModel: ...

    @abstractmethod
    def list_models(self, max_results: int, page_token: str | None) -> Page[RegisteredModel]: ...

    @abstractmethod
    def update_model(
        self, name: str, description: str | None, gate_policy: dict[str, Any] | None
    ) -> RegisteredModel: ...

    @abstractmethod
    def delete_model(self, name: str) -> None: ...

    @abstractmethod
    def set_model_tag(self, name: str, key: str, value: str) -> RegisteredModel: ...

    @abstractmethod
    def register_version(self, name: str, body: ModelVersionCreate) -> ModelVersion: ...

    @abstractmethod
    def get_version(self, ref: str) -> ModelVersion: ...

    @abstractmethod
    def get_manifest(self, ref: str) -> tuple[ModelVersion, Manifest]: ...

    @abstractmethod
    def list_versions(
        self, name: str, max_results: int, page_token: str | None
    ) -> Page[ModelVersion]: ...

    @abstractmethod
    def update_version(
        self, ref: str, description: str | None, card: dict[str, str] | None
    ) -> ModelVersion: ...

    @abstractmethod
    def set_version_tag(self, ref: str, key: str, value: str) -> ModelVersion: ...

    @abstractmethod
    def delete_version(self, ref: str) -> None: ...

    @abstractmethod
    def set_alias(self, ref: str, alias: str, reason: str | None) -> ModelVersion: ...

    @abstractmethod
    def delete_alias(self, name: str, alias: str) -> None: ...

    @abstractmethod
    def alias_history(self, name: str, alias: str | None) -> list[AliasEvent]: ...

    @abstractmethod
    def record_evaluation(
        self, report: dict[str, Any], model_ref: str | None, dataset_ref: str | None
    ) -> Evaluation: ...

    @abstractmethod
    def get_evaluation(self, evaluation_id: str) -> Evaluation: ...

    @abstractmethod
    def list_evaluations(self, ref: str) -> list[Evaluation]: ...

    @abstractmethod
    def promote(
        self,
        ref: str,
        alias: str,
        policy: dict[str, Any] | None,
        force: bool,
        reason: str | None,
    ) -> AliasEvent:
        """Run the gate and move the alias on a pass; the event carries the verdict."""

    @abstractmethod
    def card(self, ref: str, markdown: bool) -> Any:
        """The model card: a dict, or Markdown text with ``markdown``."""

    @abstractmethod
    def lineage(self, kind: str, ref: str) -> dict[str, Any]:
        """Upstream and downstream of a model version (``model``), ``data`` version or ``run``."""
