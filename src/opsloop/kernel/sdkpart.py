"""The base of SDK parts that run services in this process or call the REST API of a server."""

from __future__ import annotations

from typing import Any

__all__ = ["LocalOrRemote"]


class LocalOrRemote:
    """Holds the client (for its settings and transport) and, in local mode, the store."""

    def __init__(self, client: Any, store: Any = None) -> None:
        self._client = client
        self._store = store

    @property
    def _remote(self) -> bool:
        return bool(self._client.settings.is_remote)

    def _http(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer of a REST call (errors raise the matching ``OpsloopError``)."""
        return self._client._transport.request(method, path, **kwargs).json()
