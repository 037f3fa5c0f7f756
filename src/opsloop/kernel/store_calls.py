"""What a domain's in-process backend is built on: one transaction per call.

A domain's ``local.py`` implements its backend contract over the services, which take a
session and never commit. Each method opens a session on the backend's ``store``, calls one
service with it and returns what the service returned; :class:`StoreCalls` writes that once,
so a method names the service and its arguments (``return self._read(versions.get_version,
ref)``). A write commits when the service returns and rolls back when it raises.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from typing import Concatenate
from typing import ParamSpec
from typing import Protocol
from typing import TypeVar

__all__ = ["StoreCalls"]

P = ParamSpec("P")
T = TypeVar("T")


class _Sessions(Protocol):
    """The two kinds of session an ``opsloop.store.database.Store`` opens."""

    def read(self) -> AbstractContextManager[Any]: ...

    def write(self) -> AbstractContextManager[Any]: ...


class StoreCalls:
    """Runs a service function in one transaction of ``store`` (set by the backend: an
    attribute, or a property that opens the store on first use)."""

    store: _Sessions

    def _read(
        self, service: Callable[Concatenate[Any, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``service(session, *args, **kwargs)`` in a read session (on SQLite it never takes
        the write lock)."""
        with self.store.read() as session:
            return service(session, *args, **kwargs)

    def _write(
        self, service: Callable[Concatenate[Any, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``service(session, *args, **kwargs)`` in a write transaction, committed when it
        returns."""
        with self.store.write() as session:
            return service(session, *args, **kwargs)
