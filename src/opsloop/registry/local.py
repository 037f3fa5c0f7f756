"""The in-process registry backend: each call is one transaction over the services."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.data.manifest import Manifest
from opsloop.kernel.identity import current_user
from opsloop.kernel.paging import Page
from opsloop.lineage.walk import LineageCatalog
from opsloop.registry import aliases, evaluations, models, versions
from opsloop.registry.backend import RegistryBackend
from opsloop.registry.entities import AliasEvent, ModelVersion, ModelVersionCreate, RegisteredModel
from opsloop.registry.evaluations import Evaluation
from opsloop.store.blobs import BlobStore
from opsloop.store.database import Store

if TYPE_CHECKING:  # promotion brings evaluation (NumPy, pandas): only promote needs it
    from opsloop.registry.promotion import PromotionContext

__all__ = ["LocalRegistryBackend", "register_version"]


def register_version(
    session: Any, blobs: BlobStore, name: str, body: ModelVersionCreate, created_by: str
) -> ModelVersion:
    """One registration, shared by the local backend and the REST route."""
    from opsloop.errors import InvalidInput

    files = body.files
    source = body.source
    if body.run_id is not None and body.artifact_path is not None:
        if files is not None:
            raise InvalidInput("register from a run's artifact path or from files, not both")
        files = versions.run_manifest_rows(session, body.run_id, body.artifact_path)
        source = source or f"runs:/{body.run_id}/{body.artifact_path}"
    if files is None:
        raise InvalidInput("pass run_id with artifact_path, or the package files")
    return versions.create_version(
        session,
        blobs,
        name,
        files,
        created_by=created_by,
        run_id=body.run_id,
        source=source,
        description=body.description,
        tags=body.tags,
        card=body.card,
    )


class LocalRegistryBackend(RegistryBackend):
    def __init__(
        self, store: Store, blobs: BlobStore, home: Path, lineage: Callable[[], LineageCatalog]
    ) -> None:
        """``lineage`` gives the catalog of node kinds (every domain's) when a walk first
        needs it: gathering it imports most of opsloop."""
        self.store = store
        self.blobs = blobs
        self._lineage = lineage
        self._cache_root = Path(home) / "cache"

    @cached_property
    def lineage_catalog(self) -> LineageCatalog:
        return self._lineage()

    @cached_property
    def promotions(self) -> PromotionContext:
        from opsloop.registry.promotion import PromotionContext

        return PromotionContext(self.store, self.blobs, self._cache_root)

    def create_model(
        self, name: str, description: str | None, tags: dict[str, str] | None
    ) -> RegisteredModel:
        with self.store.write() as s:
            return models.create_model(
                s, name, created_by=current_user(), description=description, tags=tags
            )

    def get_model(self, name: str) -> RegisteredModel:
        with self.store.read() as s:
            return models.get_model(s, name)

    def list_models(self, max_results: int, page_token: str | None) -> Page[RegisteredModel]:
        with self.store.read() as s:
            return models.list_models(s, max_results, page_token)

    def update_model(
        self, name: str, description: str | None, gate_policy: dict[str, Any] | None
    ) -> RegisteredModel:
        with self.store.write() as s:
            return models.update_model(s, name, description=description, gate_policy=gate_policy)

    def delete_model(self, name: str) -> None:
        with self.store.write() as s:
            models.delete_model(s, name)

    def set_model_tag(self, name: str, key: str, value: str) -> RegisteredModel:
        with self.store.write() as s:
            return models.set_model_tag(s, name, key, value)

    def register_version(self, name: str, body: ModelVersionCreate) -> ModelVersion:
        with self.store.write() as s:
            return register_version(s, self.blobs, name, body, current_user())

    def get_version(self, ref: str) -> ModelVersion:
        with self.store.read() as s:
            return versions.get_version(s, ref)

    def get_manifest(self, ref: str) -> tuple[ModelVersion, Manifest]:
        with self.store.read() as s:
            return versions.manifest_of(s, ref)

    def list_versions(
        self, name: str, max_results: int, page_token: str | None
    ) -> Page[ModelVersion]:
        with self.store.read() as s:
            return versions.list_versions(s, name, max_results, page_token)

    def update_version(
        self, ref: str, description: str | None, card: dict[str, str] | None
    ) -> ModelVersion:
        with self.store.write() as s:
            return versions.update_version(s, ref, description=description, card=card)

    def set_version_tag(self, ref: str, key: str, value: str) -> ModelVersion:
        with self.store.write() as s:
            return versions.set_version_tag(s, ref, key, value)

    def delete_version(self, ref: str) -> None:
        with self.store.write() as s:
            versions.delete_version(s, ref)

    def set_alias(self, ref: str, alias: str, reason: str | None) -> ModelVersion:
        with self.store.write() as s:
            return aliases.set_alias(s, ref, alias, created_by=current_user(), reason=reason)

    def delete_alias(self, name: str, alias: str) -> None:
        with self.store.write() as s:
            aliases.delete_alias(s, name, alias, created_by=current_user())

    def alias_history(self, name: str, alias: str | None) -> list[AliasEvent]:
        with self.store.read() as s:
            return aliases.alias_history(s, name, alias)

    def record_evaluation(
        self, report: dict[str, Any], model_ref: str | None, dataset_ref: str | None
    ) -> Evaluation:
        with self.store.write() as s:
            return evaluations.record_evaluation(
                s, report, created_by=current_user(), model_ref=model_ref, dataset_ref=dataset_ref
            )

    def get_evaluation(self, evaluation_id: str) -> Evaluation:
        with self.store.read() as s:
            return evaluations.get_evaluation(s, evaluation_id)

    def list_evaluations(self, ref: str) -> list[Evaluation]:
        with self.store.read() as s:
            return evaluations.list_evaluations(s, ref)

    def promote(
        self,
        ref: str,
        alias: str,
        policy: dict[str, Any] | None,
        force: bool,
        reason: str | None,
    ) -> AliasEvent:
        from opsloop.registry.promotion import promote

        result = promote(
            self.promotions,
            ref,
            alias,
            created_by=current_user(),
            policy=policy,
            force=force,
            reason=reason,
        )
        return result.event

    def card(self, ref: str, markdown: bool) -> Any:
        from opsloop.registry import cards

        with self.store.read() as s:
            card = cards.build_card(s, ref)
        return cards.card_markdown(card) if markdown else card

    def lineage(self, kind: str | None, ref: str) -> dict[str, Any]:
        with self.store.read() as s:
            return self.lineage_catalog.lineage(s, kind, ref)
