"""The registry during a reproduction: its writes held, what they would have made readable.

A reproduction recomputes a pipeline run to check it; it must not publish. Inside a
:class:`~opsloop.kernel.step_context.Rehearsal` this backend wraps the real one (local or
remote, so a step's client of either kind is covered): reads go through, writes are recorded
as "would register churn@4", "would move churn@candidate to 4", ... and never made.

A held registration is previewed on the embedded store (the real registration, rolled back):
the package is checked as it would be, the step gets the version it would have got (the
number it would have been assigned, which a comparison treats as an identity field), and the
later steps of the reproduction can load it, alias it or ask for it by that number. A held
promotion cannot run its gate on a version that does not exist: it answers "not moved" and is
marked not faithful, so the comparison reports its step as held rather than as a difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

from opsloop.data.held import preview_write
from opsloop.data.manifest import Manifest
from opsloop.errors import Conflict
from opsloop.errors import NotFound
from opsloop.kernel.held_versions import HeldVersionReads
from opsloop.kernel.held_versions import HeldVersions
from opsloop.kernel.held_versions import held_tag
from opsloop.kernel.identity import current_user
from opsloop.kernel.paging import Page
from opsloop.kernel.refs import LATEST
from opsloop.kernel.refs import parse_ref
from opsloop.kernel.step_context import HeldWrites
from opsloop.kernel.step_context import Rehearsal
from opsloop.kernel.step_context import current_rehearsal
from opsloop.kernel.timeutil import now_ms
from opsloop.registry import versions
from opsloop.registry.backend import RegistryBackend
from opsloop.registry.compression_schemas import CompressionRequest
from opsloop.registry.compression_schemas import CompressionResult
from opsloop.registry.entities import AliasEvent
from opsloop.registry.entities import ModelVersion
from opsloop.registry.entities import ModelVersionCreate
from opsloop.registry.entities import RegisteredModel
from opsloop.registry.evaluations import Evaluation
from opsloop.registry.local import LocalRegistryBackend
from opsloop.registry.local import register_version
from opsloop.registry.schemas import PromotionRequest

__all__ = ["HeldRegistryBackend"]


@dataclass
class _Overlay(HeldVersions[ModelVersion, Manifest]):
    """What the held writes would have made: the versions, and the aliases moved (None:
    deleted)."""

    aliases: dict[tuple[str, str], int | None] = field(default_factory=dict)


class HeldRegistryBackend(HeldWrites, HeldVersionReads[ModelVersion, Manifest], RegistryBackend):
    """``inner`` with its writes held while a reproduction runs (see the module)."""

    _inner: RegistryBackend

    # -- the overlay --------------------------------------------------------------------------
    @staticmethod
    def _overlay(rehearsal: Rehearsal) -> _Overlay:
        found: _Overlay = rehearsal.overlay("registry", _Overlay)
        return found

    def _held(self, ref: str) -> tuple[ModelVersion, Manifest] | None:
        """The version ``ref`` names in the overlay (a would-be version, or a real one an
        alias was held to), or None when the store answers as it is."""
        rehearsal = current_rehearsal()
        if rehearsal is None:
            return None
        overlay = self._overlay(rehearsal)
        parsed = parse_ref(ref, "model")
        number = overlay.number_of(parsed)
        if parsed.alias != LATEST and (parsed.name, parsed.alias) in overlay.aliases:
            number = overlay.aliases[(parsed.name, parsed.alias)]
            if number is None:
                raise NotFound(f"model {parsed.name!r} has no alias {parsed.alias!r}")
            if (parsed.name, number) not in overlay.versions:
                version, manifest = self._inner.get_manifest(f"{parsed.name}@{number}")
                return self._with_aliases(overlay, version), manifest
        found = overlay.find(parsed.name, number)
        if found is None:
            return None
        return self._with_aliases(overlay, found[0]), found[1]

    @staticmethod
    def _with_aliases(overlay: _Overlay, version: ModelVersion) -> ModelVersion:
        aliases = set(version.aliases)
        for (name, alias), number in overlay.aliases.items():
            if name == version.name:
                aliases.discard(alias)
                if number == version.number:
                    aliases.add(alias)
        return version.model_copy(update={"aliases": sorted(aliases)})

    def _preview(self, name: str, body: ModelVersionCreate) -> tuple[ModelVersion, Manifest]:
        """The version registering would make, checked as the store checks it, rolled back."""
        inner = self._inner

        def register(session: Any) -> tuple[ModelVersion, Manifest]:
            version = register_version(session, inner.blobs, name, body, current_user())
            return version, versions.manifest_of(session, version.ref)[1]

        return preview_write(inner, LocalRegistryBackend, "model registrations", register)

    # -- writes, held -------------------------------------------------------------------------
    def register_version(self, name: str, body: ModelVersionCreate) -> ModelVersion:
        rehearsal = current_rehearsal()
        if rehearsal is None:
            return self._inner.register_version(name, body)
        version = self._overlay(rehearsal).add(name, *self._preview(name, body))
        source = f" from run {version.run_id}" if version.run_id else ""
        rehearsal.hold("models.register", f"would register {version.ref}{source}",
                       ref=version.ref)  # fmt: skip
        return version

    def set_alias(self, ref: str, alias: str, reason: str | None) -> ModelVersion:
        rehearsal = current_rehearsal()
        if rehearsal is None:
            return self._inner.set_alias(ref, alias, reason)
        version = self.get_version(ref)
        self._overlay(rehearsal).aliases[(version.name, alias)] = version.number
        rehearsal.hold("models.set_alias", f"would move {version.name}@{alias} to {version.ref}")
        return self.get_version(version.ref)

    def delete_alias(self, name: str, alias: str) -> None:
        rehearsal = current_rehearsal()
        if rehearsal is None:
            self._inner.delete_alias(name, alias)
            return
        self.get_version(f"{name}@{alias}")  # NotFound as the store would say
        self._overlay(rehearsal).aliases[(name, alias)] = None
        rehearsal.hold("models.delete_alias", f"would delete {name}@{alias}")

    def promote(self, ref: str, request: PromotionRequest) -> AliasEvent:
        rehearsal = current_rehearsal()
        if rehearsal is None:
            return self._inner.promote(ref, request)
        alias = request.alias
        version = self.get_version(ref)
        current = self.get_model(version.name).aliases.get(alias)
        how = "forced" if request.force else "through the gate"
        rehearsal.hold("models.promote", f"would promote {version.ref} to {alias} ({how})",
                       faithful=False)  # fmt: skip
        return AliasEvent(
            name=version.name, alias=alias, kind="held", from_number=current,
            to_number=version.number, moved=False, created_at=now_ms(),
            created_by=current_user(), reason="held: a reproduction moves no alias",
        )  # fmt: skip

    def compress(self, ref: str, request: CompressionRequest) -> CompressionResult:
        if current_rehearsal() is None:
            return self._inner.compress(ref, request)
        raise Conflict(
            f"cannot compress {ref} during a reproduction: it registers a version, and a "
            "reproduction writes nothing outside its own runs"
        )

    def create_model(
        self, name: str, description: str | None, tags: dict[str, str] | None
    ) -> RegisteredModel:
        rehearsal = current_rehearsal()
        if rehearsal is None:
            return self._inner.create_model(name, description, tags)
        rehearsal.hold("models.create", f"would register model {name!r}", faithful=False)
        now = now_ms()
        return RegisteredModel(
            name=name, description=description, tags=tags or {}, created_at=now,
            updated_at=now, created_by=current_user(),
        )  # fmt: skip

    def update_model(
        self, name: str, description: str | None, gate_policy: dict[str, Any] | None
    ) -> RegisteredModel:
        rehearsal = current_rehearsal()
        if rehearsal is None:
            return self._inner.update_model(name, description, gate_policy)
        model = self.get_model(name)
        changed = {k: v for k, v in (("description", description), ("gate_policy", gate_policy))
                   if v is not None}  # fmt: skip
        rehearsal.hold("models.update", f"would change {', '.join(changed)} of model {name!r}")
        return model.model_copy(update=changed)

    def delete_model(self, name: str) -> None:
        rehearsal = current_rehearsal()
        if rehearsal is None:
            self._inner.delete_model(name)
            return
        self.get_model(name)
        rehearsal.hold("models.delete", f"would delete model {name!r}", faithful=False)

    def set_model_tag(self, name: str, key: str, value: str) -> RegisteredModel:
        rehearsal = current_rehearsal()
        if rehearsal is None:
            return self._inner.set_model_tag(name, key, value)
        model = self.get_model(name)
        return held_tag(rehearsal, "models.set_tag", f"model {name!r}", model, key, value)

    def update_version(
        self, ref: str, description: str | None, card: dict[str, str] | None
    ) -> ModelVersion:
        rehearsal = current_rehearsal()
        if rehearsal is None:
            return self._inner.update_version(ref, description, card)
        version = self.get_version(ref)
        rehearsal.hold("versions.update_version", f"would change what {version.ref} says")
        update: dict[str, Any] = {"card": {**version.card, **(card or {})}}
        if description is not None:
            update["description"] = description
        return version.model_copy(update=update)

    def set_version_tag(self, ref: str, key: str, value: str) -> ModelVersion:
        tag = self._inner.set_version_tag
        return self._tag_version("versions.set_version_tag", tag, ref, key, value)

    def delete_version(self, ref: str) -> None:
        rehearsal = current_rehearsal()
        if rehearsal is None:
            self._inner.delete_version(ref)
            return
        version = self.get_version(ref)
        rehearsal.hold("versions.delete_version", f"would delete {version.ref}", faithful=False)

    def record_evaluation(
        self, report: dict[str, Any], model_ref: str | None, dataset_ref: str | None
    ) -> Evaluation:
        rehearsal = current_rehearsal()
        if rehearsal is None:
            return self._inner.record_evaluation(report, model_ref, dataset_ref)
        rehearsal.hold("models.record_evaluation", f"would store an evaluation of {model_ref}")
        return Evaluation(
            evaluation_id=None, model_ref=model_ref, dataset_ref=dataset_ref,
            task=report["task"], target=report.get("target"), metrics=report["metrics"],
            report=report, created_at=now_ms(), created_by=current_user(),
        )  # fmt: skip

    # -- reads (a version's through the overlay: HeldVersionReads) ---------------------------
    def get_model(self, name: str) -> RegisteredModel:
        model = self._inner.get_model(name)
        rehearsal = current_rehearsal()
        if rehearsal is None:
            return model
        overlay = self._overlay(rehearsal)
        aliases = dict(model.aliases)
        for (held_name, alias), number in overlay.aliases.items():
            if held_name == name:
                aliases.pop(alias, None)
                if number is not None:
                    aliases[alias] = number
        latest = max(model.latest_version or 0, overlay.last.get(name, 0)) or None
        return model.model_copy(update={"aliases": aliases, "latest_version": latest})

    def list_models(self, max_results: int, page_token: str | None) -> Page[RegisteredModel]:
        return self._inner.list_models(max_results, page_token)

    def alias_history(self, name: str, alias: str | None) -> list[AliasEvent]:
        return self._inner.alias_history(name, alias)

    def get_evaluation(self, evaluation_id: str) -> Evaluation:
        return self._inner.get_evaluation(evaluation_id)

    def list_evaluations(self, ref: str) -> list[Evaluation]:
        return self._inner.list_evaluations(ref)

    def card(self, ref: str, markdown: bool) -> Any:
        return self._inner.card(ref, markdown)

    def lineage(self, kind: str | None, ref: str) -> dict[str, Any]:
        return self._inner.lineage(kind, ref)
