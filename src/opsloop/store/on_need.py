"""The stores of an in-process backend, opened when a call first needs them.

A listing command is a whole process for one or two reads; on the embedded store a domain
answers those on a bare ``sqlite3`` connection (:mod:`opsloop.store.quick_reads`), so opening
the ORM store (and importing SQLAlchemy) waits until a call asks for something else. Tracking's
and the registry's local backends hold their stores this one way.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING
from typing import Generic
from typing import TypeVar

from opsloop.store.quick_reads import QuickConnection

if TYPE_CHECKING:
    from opsloop.store.blobs import BlobStore
    from opsloop.store.database import Store

__all__ = ["StoresOnNeed"]

Q = TypeVar("Q", bound=QuickConnection)


class StoresOnNeed(Generic[Q]):
    """The metadata store and blob store, opened on first use, and the domain's quick reads.

    Args:
        stores: Opens (or returns the process's shared) metadata store and blob store; called
            once, when a call first needs them.
        quick: Reads on a bare connection to the same SQLite file, for the calls it serves.
    """

    def __init__(
        self, stores: Callable[[], tuple[Store, BlobStore]], quick: Q | None = None
    ) -> None:
        self._stores = stores
        self._quick = quick

    @cached_property
    def _opened(self) -> tuple[Store, BlobStore]:
        return self._stores()

    @property
    def store(self) -> Store:
        return self._opened[0]

    @property
    def blobs(self) -> BlobStore:
        return self._opened[1]

    def close(self) -> None:
        """Close the quick reads' connection (reads go through the store from then on)."""
        quick, self._quick = self._quick, None
        if quick is not None:
            quick.close()
