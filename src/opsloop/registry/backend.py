"""The registry backend contract: what the models SDK needs from the store, local or remote.

Package bytes never pass through it: the SDK stores package files in the blob store (as data
versions do) and registers their manifest. :class:`~opsloop.registry.local.LocalRegistryBackend`
calls the services in-process; :class:`~opsloop.registry.remote.RemoteRegistryBackend` the REST
API. Gated promotion runs wherever the backend's services run (in-process, or on the server).

Contract: methods are thread-safe; returned entities are immutable snapshots (a version's
package never changes; its description, card, tags and aliases may, so read it again to see
them); errors are ``OpsloopError`` subclasses, the same class whichever backend raised them;
every write is durable when the method returns. A ``ref`` is ``NAME@N``, ``NAME@ALIAS`` or
``NAME`` (the latest version): a malformed one is ``InvalidInput``, an unknown model, number or
alias ``NotFound``. Each method's docstring names the errors it raises on purpose; any method
may also raise ``StoreError`` (the database, blob store or server failed; retrying may help)
and, over HTTP, ``Unauthenticated`` or ``PermissionDenied``.
"""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod
from typing import TYPE_CHECKING
from typing import Any

from opsloop.data.manifest import Manifest
from opsloop.kernel.paging import Page
from opsloop.registry.entities import AliasEvent
from opsloop.registry.entities import ModelVersion
from opsloop.registry.entities import ModelVersionCreate
from opsloop.registry.entities import RegisteredModel
from opsloop.registry.schemas import PromotionRequest

if TYPE_CHECKING:  # its module holds the services too (SQLAlchemy): a plain read needs neither
    from opsloop.registry.compression_schemas import CompressionRequest
    from opsloop.registry.compression_schemas import CompressionResult
    from opsloop.registry.evaluations import Evaluation

__all__ = ["RegistryBackend"]


class RegistryBackend(ABC):
    """Registered models, versions, aliases, evaluations and promotions. See the module
    docstring for the contract."""

    @abstractmethod
    def create_model(
        self, name: str, description: str | None, tags: dict[str, str] | None
    ) -> RegisteredModel:
        """Register a model name. ``Conflict`` when it is registered already; ``InvalidInput``
        for a malformed name or tag."""

    @abstractmethod
    def get_model(self, name: str) -> RegisteredModel:
        """One registered model with its tags, aliases and gate policy. ``NotFound``."""

    @abstractmethod
    def list_models(self, max_results: int, page_token: str | None) -> Page[RegisteredModel]:
        """One page of registered models, by name. ``InvalidInput`` for a page token not
        handed out by a listing."""

    @abstractmethod
    def update_model(
        self, name: str, description: str | None, gate_policy: dict[str, Any] | None
    ) -> RegisteredModel:
        """Change a model's description and/or the gate policy its promotions use by default
        (``None`` leaves a field alone). ``NotFound``; ``InvalidInput`` for a bad policy."""

    @abstractmethod
    def delete_model(self, name: str) -> None:
        """Delete a model and all its versions. ``NotFound``; ``Conflict`` while an alias or a
        deployment points at one of its versions."""

    @abstractmethod
    def set_model_tag(self, name: str, key: str, value: str) -> RegisteredModel:
        """Set or overwrite one model tag; the model. ``NotFound``; ``InvalidInput`` for a
        malformed key."""

    @abstractmethod
    def register_version(self, name: str, body: ModelVersionCreate) -> ModelVersion:
        """Register a package as the model's next version (the model is registered on first
        use): from a FINISHED run's artifact folder (``run_id`` + ``artifact_path``) or from
        package files already in the blob store. ``NotFound`` for an unknown run or an empty
        artifact folder; ``Conflict`` for a run that has not finished; ``InvalidInput`` for both
        sources or neither, files that are not an opsloop package or not uploaded, a malformed
        name or tag."""

    @abstractmethod
    def get_version(self, ref: str) -> ModelVersion:
        """The version ``ref`` names. ``NotFound``; ``InvalidInput`` for a malformed ref."""

    @abstractmethod
    def get_manifest(self, ref: str) -> tuple[ModelVersion, Manifest]:
        """The version ``ref`` names and its package's manifest (every file's path, digest and
        size). ``NotFound``; ``InvalidInput`` for a malformed ref."""

    @abstractmethod
    def list_versions(
        self, name: str, max_results: int, page_token: str | None
    ) -> Page[ModelVersion]:
        """One page of a model's versions, newest first. ``NotFound`` for an unknown model;
        ``InvalidInput`` for a page token not handed out by a listing."""

    @abstractmethod
    def update_version(
        self, ref: str, description: str | None, card: dict[str, str] | None
    ) -> ModelVersion:
        """Change what people wrote about a version: its description, and card sections
        (merged into those it has). ``NotFound``; ``InvalidInput`` for a malformed ref."""

    @abstractmethod
    def set_version_tag(self, ref: str, key: str, value: str) -> ModelVersion:
        """Set or overwrite one tag of the version; the version. ``NotFound``;
        ``InvalidInput`` for a malformed ref or key."""

    @abstractmethod
    def delete_version(self, ref: str) -> None:
        """Delete a version. ``NotFound``; ``Conflict`` while an alias or a deployment points
        at it; ``InvalidInput`` for a malformed ref."""

    @abstractmethod
    def set_alias(self, ref: str, alias: str, reason: str | None) -> ModelVersion:
        """Point ``alias`` at the version without a gate (recorded in the alias history with
        ``reason``); that version. ``NotFound``; ``InvalidInput`` for a malformed ref or
        alias."""

    @abstractmethod
    def delete_alias(self, name: str, alias: str) -> None:
        """Remove one alias of model ``name`` (recorded in the alias history). ``NotFound``
        when the model or the alias does not exist."""

    @abstractmethod
    def alias_history(self, name: str, alias: str | None) -> list[AliasEvent]:
        """Every decision about the model's aliases (or only ``alias``), newest first, with
        gate verdicts. ``NotFound`` for an unknown model."""

    @abstractmethod
    def record_evaluation(
        self, report: dict[str, Any], model_ref: str | None, dataset_ref: str | None
    ) -> Evaluation:
        """Store an evaluation report, linked to the model and dataset versions when given.
        ``InvalidInput`` for a report without ``task`` and ``metrics`` or a malformed ref;
        ``NotFound`` for an unknown model or dataset version."""

    @abstractmethod
    def get_evaluation(self, evaluation_id: str) -> Evaluation:
        """One stored evaluation, with its plots. ``NotFound``."""

    @abstractmethod
    def list_evaluations(self, ref: str) -> list[Evaluation]:
        """The version's evaluations, newest first, without their plots. ``NotFound``;
        ``InvalidInput`` for a malformed ref."""

    @abstractmethod
    def promote(self, ref: str, request: PromotionRequest) -> AliasEvent:
        """Run the gate (the request's ``policy``, else the model's stored one) and move its
        ``alias`` on a pass, or move it unconditionally with ``force`` and a ``reason`` (built
        unchecked by the SDK; a backend checks it as the server does); the event carries the
        verdict, which is recorded whether it passed or not. ``NotFound``; ``InvalidInput`` for
        no policy and no ``force``, ``force`` without a reason, a bad policy or a gate dataset
        that is not a table; ``Conflict`` when the alias moved while the gate ran or a file is
        missing from the blob store; ``PermissionDenied`` for a package that cannot be loaded
        safely."""

    @abstractmethod
    def compress(self, ref: str, request: CompressionRequest) -> CompressionResult:
        """Compress the version into the model's next version (tagged ``compressed_from``,
        linked ``compressed``), measure both on size, latency and (with ``data``) quality, and
        judge them by the request's gate; with ``alias``, record the decision and move the
        alias on a pass. Runs where the blobs are. ``NotFound`` for the version or the data
        version; ``InvalidInput`` for an unknown method, a method that does not fit the
        flavor, a missing extra or a bad setting; ``Conflict`` when the alias moved meanwhile
        or a file is missing from the blob store, or during a reproduction (which registers
        nothing); ``PermissionDenied`` for a package that cannot be loaded safely."""

    @abstractmethod
    def card(self, ref: str, markdown: bool) -> Any:
        """The version's model card, built from what the registry knows plus what people
        wrote: a dict, or Markdown text with ``markdown``. ``NotFound``; ``InvalidInput`` for a
        malformed ref."""

    @abstractmethod
    def lineage(self, kind: str | None, ref: str) -> dict[str, Any]:
        """Upstream and downstream of a model version (``kind="model"``), ``data`` version
        or ``run`` named by ``ref`` (``kind=None``: whichever kind has it). ``NotFound``;
        ``InvalidInput`` for an unknown kind, a ref several kinds have, or a malformed ref."""

    def close(self) -> None:  # noqa: B027 - optional hook: most backends hold nothing
        """Release what the backend holds open."""
