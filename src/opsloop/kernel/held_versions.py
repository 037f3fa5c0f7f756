"""What the held backends of numbered things (``data/held.py``, ``registry/held.py``) share.

Inside a reproduction (see :class:`~opsloop.kernel.step_context.Rehearsal`) a versioning write
is previewed, never made: :class:`HeldVersions` keeps what it would have made, under the
number it would have been given, so later steps of the same reproduction read it back by
that number or as ``latest``, and :class:`HeldVersionReads` answers a version read from it
first. :func:`held_tag` is the one way a held backend answers a tag write: recorded as
"would tag ...", the entity returned as tagging would have left it.
"""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Generic
from typing import Protocol
from typing import Self
from typing import TypeVar

from opsloop.kernel.paging import Page
from opsloop.kernel.refs import LATEST
from opsloop.kernel.refs import VersionRef
from opsloop.kernel.step_context import Rehearsal
from opsloop.kernel.step_context import current_rehearsal
from opsloop.kernel.timeutil import now_ms

__all__ = ["HeldVersionReads", "HeldVersions", "held_tag"]


class _Numbered(Protocol):
    @property
    def number(self) -> int: ...

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Self: ...


class _Tagged(Protocol):
    @property
    def tags(self) -> dict[str, str]: ...

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Self: ...


V = TypeVar("V", bound=_Numbered)
M = TypeVar("M")
T = TypeVar("T", bound=_Tagged)


@dataclass
class HeldVersions(Generic[V, M]):
    """The versions held writes would have made, by (name, number), with their manifests,
    and the last number handed out per name."""

    versions: dict[tuple[str, int], tuple[V, M]] = field(default_factory=dict)
    last: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, version: V, manifest: M) -> V:
        """Keep a previewed version under the number it would have got: past the store's
        next number and every number held before it for ``name`` (the preview, rolled back,
        cannot see those)."""
        number = max(version.number, self.last.get(name, 0) + 1)
        version = version.model_copy(update={"number": number, "created_at": now_ms()})
        self.versions[(name, number)] = (version, manifest)
        self.last[name] = number
        return version

    def number_of(self, parsed: VersionRef) -> int | None:
        """The number ``parsed`` names here: its own, or for ``latest`` the last one held
        (None when nothing is held for the name); an alias is the caller's to resolve."""
        return self.last.get(parsed.name) if parsed.alias == LATEST else parsed.number

    def find(self, name: str, number: int | None) -> tuple[V, M] | None:
        """The held version ``name@number`` and its manifest, None when none is held."""
        return self.versions.get((name, number)) if number is not None else None


class HeldVersionReads(ABC, Generic[V, M]):
    """A held backend's version reads: the version held writes would have made where one is
    (``_held``, the backend's own lookup, which may resolve held aliases too), else what the
    wrapped backend ``_inner`` answers. A listing is the wrapped backend's as it stands: held
    versions are read back by ref, never listed. Tagging a version is held here too: it
    answers with the version read this way."""

    _inner: Any

    @abstractmethod
    def _held(self, ref: str) -> tuple[V, M] | None:
        """The held version ``ref`` names and its manifest, None when it is not held here."""

    def get_version(self, ref: str) -> V:
        held = self._held(ref)
        return held[0] if held is not None else self._inner.get_version(ref)

    def get_manifest(self, ref: str) -> tuple[V, M]:
        held = self._held(ref)
        return held if held is not None else self._inner.get_manifest(ref)

    def list_versions(self, name: str, max_results: int, page_token: str | None) -> Page[V]:
        return self._inner.list_versions(name, max_results, page_token)

    def _tag_version(
        self, write: str, tag: Callable[[str, str, str], V], ref: str, key: str, value: str
    ) -> V:
        """``tag(ref, key, value)``, the wrapped backend's version tagging, held inside a
        reproduction (recorded as ``write``)."""
        rehearsal = current_rehearsal()
        if rehearsal is None:
            return tag(ref, key, value)
        version = self.get_version(ref)
        return held_tag(rehearsal, write, version.ref, version, key, value)


def held_tag(rehearsal: Rehearsal, write: str, what: str, entity: T, key: str, value: str) -> T:
    """Hold tagging ``what`` (``entity``) with ``key=value``: recorded as the ``write`` it
    would have been, and ``entity`` returned as the tag would have left it."""
    rehearsal.hold(write, f"would tag {what} {key}={value}")
    return entity.model_copy(update={"tags": {**entity.tags, key: value}})
