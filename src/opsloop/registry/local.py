"""The in-process registry backend: each call is one transaction over the services.

The store is opened when first needed: on the embedded store, the everyday reads (a model, the
model listing, a version, a model's versions, the alias history) are answered by
:mod:`~opsloop.registry.quick_reads` without SQLAlchemy, so ``opsloop models list`` or
``models show churn@3`` never imports it. The services (and SQLAlchemy with them) are imported
by the methods that call them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.kernel.identity import current_user
from opsloop.kernel.paging import Page
from opsloop.kernel.store_calls import StoreCalls
from opsloop.registry.backend import RegistryBackend
from opsloop.registry.entities import AliasEvent
from opsloop.registry.entities import ModelVersion
from opsloop.registry.entities import ModelVersionCreate
from opsloop.registry.entities import RegisteredModel
from opsloop.registry.quick_reads import QUICK_PAGE_LIMIT
from opsloop.registry.quick_reads import QuickReads
from opsloop.registry.schemas import PromotionRequest
from opsloop.store.on_need import StoresOnNeed

if TYPE_CHECKING:  # promotion brings evaluation (NumPy, pandas): only promote needs it
    from opsloop.data.manifest import Manifest
    from opsloop.lineage.walk import LineageCatalog
    from opsloop.registry.compression_schemas import CompressionRequest
    from opsloop.registry.compression_schemas import CompressionResult
    from opsloop.registry.evaluations import Evaluation
    from opsloop.registry.promotion import PromotionContext
    from opsloop.store.blobs import BlobStore
    from opsloop.store.database import Store

__all__ = ["LocalRegistryBackend", "register_version"]


def register_version(
    session: Any, blobs: BlobStore, name: str, body: ModelVersionCreate, created_by: str
) -> ModelVersion:
    """One registration, shared by the local backend and the REST route."""
    from opsloop.errors import InvalidInput
    from opsloop.registry import versions

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


class LocalRegistryBackend(StoresOnNeed[QuickReads], StoreCalls, RegistryBackend):
    """Talks to the metadata store and blob store directly (the embedded default).

    Args:
        stores: Opens (or returns the process's shared) metadata store and blob store; called
            once, when a call first needs them.
        home: Where the promotion gate caches the packages it loads.
        lineage: The catalog of node kinds (every domain's), when a walk first needs it:
            gathering it imports most of opsloop.
        quick: Reads on a bare connection to the same SQLite file, for the calls it serves.
    """

    def __init__(
        self,
        stores: Callable[[], tuple[Store, BlobStore]],
        home: Path,
        lineage: Callable[[], LineageCatalog],
        quick: QuickReads | None = None,
    ) -> None:
        super().__init__(stores, quick)
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
        from opsloop.registry import models

        return self._write(
            models.create_model, name, created_by=current_user(), description=description, tags=tags
        )

    def get_model(self, name: str) -> RegisteredModel:
        if self._quick is not None:
            return self._quick.get_model(name)
        from opsloop.registry import models

        return self._read(models.get_model, name)

    def list_models(self, max_results: int, page_token: str | None) -> Page[RegisteredModel]:
        if self._quick is not None and 0 < max_results <= QUICK_PAGE_LIMIT:
            return self._quick.list_models(max_results, page_token)
        from opsloop.registry import models

        return self._read(models.list_models, max_results, page_token)

    def update_model(
        self, name: str, description: str | None, gate_policy: dict[str, Any] | None
    ) -> RegisteredModel:
        from opsloop.registry import models

        return self._write(
            models.update_model, name, description=description, gate_policy=gate_policy
        )

    def delete_model(self, name: str) -> None:
        from opsloop.registry import models

        self._write(models.delete_model, name)

    def set_model_tag(self, name: str, key: str, value: str) -> RegisteredModel:
        from opsloop.registry import models

        return self._write(models.set_model_tag, name, key, value)

    def register_version(self, name: str, body: ModelVersionCreate) -> ModelVersion:
        return self._write(register_version, self.blobs, name, body, current_user())

    def get_version(self, ref: str) -> ModelVersion:
        if self._quick is not None:
            return self._quick.get_version(ref)
        from opsloop.registry import versions

        return self._read(versions.get_version, ref)

    def get_manifest(self, ref: str) -> tuple[ModelVersion, Manifest]:
        if self._quick is not None:
            return self._quick.get_manifest(ref)
        from opsloop.registry import versions

        return self._read(versions.manifest_of, ref)

    def list_versions(
        self, name: str, max_results: int, page_token: str | None
    ) -> Page[ModelVersion]:
        if self._quick is not None and 0 < max_results <= QUICK_PAGE_LIMIT:
            return self._quick.list_versions(name, max_results, page_token)
        from opsloop.registry import versions

        return self._read(versions.list_versions, name, max_results, page_token)

    def update_version(
        self, ref: str, description: str | None, card: dict[str, str] | None
    ) -> ModelVersion:
        from opsloop.registry import versions

        return self._write(versions.update_version, ref, description=description, card=card)

    def set_version_tag(self, ref: str, key: str, value: str) -> ModelVersion:
        from opsloop.registry import versions

        return self._write(versions.set_version_tag, ref, key, value)

    def delete_version(self, ref: str) -> None:
        from opsloop.registry import versions

        self._write(versions.delete_version, ref)

    def set_alias(self, ref: str, alias: str, reason: str | None) -> ModelVersion:
        from opsloop.registry import aliases

        return self._write(aliases.set_alias, ref, alias, created_by=current_user(), reason=reason)

    def delete_alias(self, name: str, alias: str) -> None:
        from opsloop.registry import aliases

        self._write(aliases.delete_alias, name, alias, created_by=current_user())

    def alias_history(self, name: str, alias: str | None) -> list[AliasEvent]:
        if self._quick is not None:
            return self._quick.alias_history(name, alias)
        from opsloop.registry import aliases

        return self._read(aliases.alias_history, name, alias)

    def record_evaluation(
        self, report: dict[str, Any], model_ref: str | None, dataset_ref: str | None
    ) -> Evaluation:
        from opsloop.registry import evaluations

        return self._write(
            evaluations.record_evaluation,
            report,
            created_by=current_user(),
            model_ref=model_ref,
            dataset_ref=dataset_ref,
        )

    def get_evaluation(self, evaluation_id: str) -> Evaluation:
        from opsloop.registry import evaluations

        return self._read(evaluations.get_evaluation, evaluation_id)

    def list_evaluations(self, ref: str) -> list[Evaluation]:
        from opsloop.registry import evaluations

        return self._read(evaluations.list_evaluations, ref)

    def promote(self, ref: str, request: PromotionRequest) -> AliasEvent:
        from opsloop.registry.promotion import promote

        return promote(self.promotions, ref, created_by=current_user(), **dict(request)).event

    def compress(self, ref: str, request: CompressionRequest) -> CompressionResult:
        from opsloop.registry.compression import compress

        return compress(self.promotions, ref, request, created_by=current_user())

    def card(self, ref: str, markdown: bool) -> Any:
        from opsloop.registry import cards

        card = self._read(cards.build_card, ref)
        return cards.card_markdown(card) if markdown else card

    def lineage(self, kind: str | None, ref: str) -> dict[str, Any]:
        return self._read(self.lineage_catalog.lineage, kind, ref)
