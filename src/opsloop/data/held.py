"""Dataset versions during a reproduction: writes held, what they would have made readable.

The data half of :mod:`opsloop.registry.held` (see there, and
:class:`~opsloop.kernel.step_context.Rehearsal`): inside a reproduction, versioning data,
moving an alias, tagging, recording a validation and claiming a run produced a version are
recorded as "would version breast-cancer-validation@4" and never made. A run's reading a
version is its own record and goes through. Versioning is previewed on the embedded store
(the real registration, rolled back): identical files give the existing version back, as they
would; new files give the version they would have made, which later steps can read back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import TypeVar

from opsloop.data import versions
from opsloop.data.backend import DataBackend
from opsloop.data.entities import DataDiff
from opsloop.data.entities import Dataset
from opsloop.data.entities import DatasetVersion
from opsloop.data.entities import LineageLink
from opsloop.data.entities import VersionCreate
from opsloop.data.local import LocalDataBackend
from opsloop.data.manifest import Manifest
from opsloop.errors import InvalidInput
from opsloop.kernel.held_versions import HeldVersionReads
from opsloop.kernel.held_versions import HeldVersions
from opsloop.kernel.identity import current_user
from opsloop.kernel.paging import Page
from opsloop.kernel.refs import parse_ref
from opsloop.kernel.step_context import HeldWrites
from opsloop.kernel.step_context import Rehearsal
from opsloop.kernel.step_context import current_rehearsal

__all__ = ["HeldDataBackend", "preview_write"]

T = TypeVar("T")


_Overlay = HeldVersions[DatasetVersion, Manifest]


class _Undo(Exception):
    """Raised inside a write transaction to roll it back with its result."""


def preview_write(inner: Any, local: type, what: str, write: Callable[[Any], T]) -> T:
    """What ``write(session)`` returns on the embedded store of ``inner``, rolled back: a held
    write checked as the store checks it, and nothing kept (the registry previews its
    registrations with it too). ``InvalidInput`` when ``inner`` is not a ``local`` backend: a
    client of a server, where the reproduction has to run."""
    if not isinstance(inner, local):
        raise InvalidInput(
            f"a reproduction holds {what} only on the embedded store; this client talks to a "
            "server: reproduce there (opsloop runs reproduce --on-server)"
        )
    try:
        with inner.store.write() as session:
            raise _Undo(write(session))
    except _Undo as undo:
        result: T = undo.args[0]
        return result


class HeldDataBackend(HeldWrites, HeldVersionReads[DatasetVersion, Manifest], DataBackend):
    """``inner`` with its writes held while a reproduction runs (see the module)."""

    _inner: DataBackend

    @property  # type: ignore[override]
    def remote(self) -> Any:
        return self._inner.remote

    @staticmethod
    def _overlay(rehearsal: Rehearsal) -> _Overlay:
        found: _Overlay = rehearsal.overlay("data", HeldVersions)
        return found

    def _held(self, ref: str) -> tuple[DatasetVersion, Manifest] | None:
        rehearsal = current_rehearsal()
        if rehearsal is None:
            return None
        overlay = self._overlay(rehearsal)
        parsed = parse_ref(ref, "dataset")
        return overlay.find(parsed.name, overlay.number_of(parsed))

    # -- writes, held -------------------------------------------------------------------------
    def register_version(self, name: str, body: VersionCreate) -> tuple[DatasetVersion, bool]:
        rehearsal = current_rehearsal()
        if rehearsal is None:
            return self._inner.register_version(name, body)

        def register(session: Any) -> tuple[tuple[DatasetVersion, bool], Manifest]:
            made = versions.register_version(session, name, body, current_user())
            return made, versions.get_manifest(session, made[0].ref)[1]

        previewed = preview_write(self._inner, LocalDataBackend, "data versioning", register)
        (version, created), manifest = previewed
        if not created:  # the same files: the existing version, nothing written
            return version, False
        version = self._overlay(rehearsal).add(name, version, manifest)
        rehearsal.hold("data.add", f"would version {version.ref}", ref=version.ref)
        return version, True

    def set_alias(self, ref: str, alias: str) -> DatasetVersion:
        rehearsal = current_rehearsal()
        if rehearsal is None:
            return self._inner.set_alias(ref, alias)
        version = self.get_version(ref)
        rehearsal.hold("data.set_alias", f"would move {version.name}@{alias} to {version.ref}")
        return version.model_copy(update={"aliases": sorted({*version.aliases, alias})})

    def delete_alias(self, name: str, alias: str) -> None:
        rehearsal = current_rehearsal()
        if rehearsal is None:
            self._inner.delete_alias(name, alias)
            return
        self._inner.get_version(f"{name}@{alias}")  # NotFound as the store would say
        rehearsal.hold("data.delete_alias", f"would delete {name}@{alias}")

    def set_tag(self, ref: str, key: str, value: str) -> DatasetVersion:
        return self._tag_version("data.set_tag", self._inner.set_tag, ref, key, value)

    def record_validation(self, ref: str, report: dict[str, Any], passed: bool) -> DatasetVersion:
        rehearsal = current_rehearsal()
        if rehearsal is None:
            return self._inner.record_validation(ref, report, passed)
        version = self.get_version(ref)
        verdict = "passed" if passed else "failed"
        rehearsal.hold("data.validate", f"would record {version.ref}'s validation: {verdict}")
        return version.model_copy(update={"validation_status": verdict})

    def log_lineage(self, run_id: str, ref: str, relation: str) -> DatasetVersion:
        rehearsal = current_rehearsal()
        held = self._held(ref)
        if rehearsal is None or (relation == "input" and held is None):
            return self._inner.log_lineage(run_id, ref, relation)  # a run's own reading
        version = held[0] if held is not None else self.get_version(ref)
        rehearsal.hold(f"data.log_{relation}",
                       f"would record run {run_id} as {relation} of {version.ref}")  # fmt: skip
        return version

    # -- reads (a version's through the overlay: HeldVersionReads) ---------------------------
    def get_dataset(self, name: str) -> Dataset:
        return self._inner.get_dataset(name)

    def list_datasets(self, max_results: int, page_token: str | None) -> Page[Dataset]:
        return self._inner.list_datasets(max_results, page_token)

    def diff(self, old_ref: str, new_ref: str) -> DataDiff:
        return self._inner.diff(old_ref, new_ref)

    def get_validation(self, ref: str) -> dict[str, Any]:
        return self._inner.get_validation(ref)

    def lineage(self, ref: str) -> list[LineageLink]:
        return self._inner.lineage(ref)
