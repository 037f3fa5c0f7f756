"""What a domain's remote backend is built on: its transport, and the one way it sends a write.

A domain's ``remote.py`` implements its backend contract with one request per method to the
server's REST API; each such class derives from :class:`RemoteBackend` beside its contract
(``class RemoteMonitorBackend(RemoteBackend, MonitorBackend)``), so that the constructor and
the write helper are written once.
"""

from __future__ import annotations

from typing import Any
from typing import TypeVar

from opsloop.kernel.transport import HttpTransport

__all__ = ["RemoteBackend"]

T = TypeVar("T")


class RemoteBackend:
    """Calls an opsloop server through ``transport`` (its errors come back as the same
    ``OpsloopError`` classes the local backend raises)."""

    def __init__(self, transport: HttpTransport) -> None:
        self.transport = transport

    def _post(self, kind: type[T], path: str, body: Any = None) -> T:
        """POST ``body`` as JSON and read the answer as ``kind``. Sent once, never retried:
        a retry after a lost answer could make or change something twice."""
        return self.transport.fetch(kind, "POST", path, json=body, idempotent=False)
