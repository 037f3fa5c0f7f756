"""What the numbered versions of named things (dataset versions, model versions) share.

Both are addressed the same way, ``NAME@N`` (see :mod:`opsloop.kernel.refs`): the entity's name
and number come first and its ``ref`` is built from them in one place
(:class:`NumberedVersion`), and each domain's SDK reads and unlabels them alike over its
backend (:class:`VersionReads`).
"""

from __future__ import annotations

from typing import Any
from typing import Generic
from typing import TypeVar

from opsloop.kernel.entities import Entity
from opsloop.kernel.paging import Page

__all__ = ["NumberedVersion", "VersionReads"]


class NumberedVersion(Entity):
    """A frozen entity whose ``ref`` is ``name@number``."""

    name: str
    number: int

    @property
    def ref(self) -> str:
        """``NAME@N``: how the SDK, the CLI and the REST paths address this version."""
        return f"{self.name}@{self.number}"


V = TypeVar("V", bound=NumberedVersion)


class VersionReads(Generic[V]):
    """The SDK methods every numbered thing answers the same way: its backend (``_backend``)
    has ``get_version``, ``list_versions`` and ``delete_alias`` under those names."""

    _backend: Any

    def version(self, ref: str) -> V:
        """The version ``NAME@N``, ``NAME@ALIAS`` or ``NAME`` (the latest)."""
        version: V = self._backend.get_version(ref)
        return version

    def versions(self, name: str, max_results: int = 100, page_token: str | None = None) -> Page[V]:
        """``name``'s versions, newest first, a page at a time."""
        page: Page[V] = self._backend.list_versions(name, max_results, page_token)
        return page

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` from whichever version of ``name`` it points at."""
        self._backend.delete_alias(name, alias)
