"""A server's blob store seen from a client: the blob routes of ``opsloop server``.

The same content-addressed contract as :class:`~opsloop.store.blobs.BlobStore` (``missing``,
bulk ``put_verified`` / ``get_many``), so code that moves blobs works unchanged whether it
talks to the store directly or to a server. Tracking and data both upload through here.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from opsloop.transport import HttpTransport

__all__ = ["HttpBlobRemote"]

_JSON = {"Content-Type": "application/json"}
_RETRYABLE_UPLOAD_BYTES = 64 << 20
_THREADS = 8


class HttpBlobRemote:
    """Blobs through ``/api/blobs`` of one server."""

    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport
        self.url = transport.base_url

    def missing(self, digests: list[str]) -> list[str]:
        """The digests the server lacks."""
        import json

        body = json.dumps({"digests": list(digests)})
        found: list[str] = self.http.json(
            "POST", "/api/blobs/missing", content=body, headers=_JSON
        )["digests"]
        return found

    def upload(self, digest: str, path: Path) -> None:
        """Upload one file; the server hashes it and refuses it unless it matches."""
        url = f"/api/blobs/{digest}"
        if path.stat().st_size <= _RETRYABLE_UPLOAD_BYTES:
            self.http.request("PUT", url, content=path.read_bytes())
        else:  # streamed from disk: a retry would need to rewind, so none is made
            with open(path, "rb") as fh:
                self.http.request("PUT", url, content=fh, idempotent=False)

    def download(self, digest: str, dest: Path) -> None:
        """Write the blob to ``dest`` through a temp file (never half-written)."""
        self.http.download(f"/api/blobs/{digest}", dest)

    def put_verified(
        self, items: list[tuple[Path, str]], on_done: Callable[[int], None] | None = None
    ) -> None:
        _in_threads([(d, p) for p, d in items], self.upload, on_done)

    def get_many(
        self, items: list[tuple[str, Path]], on_done: Callable[[int], None] | None = None
    ) -> None:
        _in_threads(items, self.download, on_done)


def _in_threads(
    items: list[tuple[str, Path]],
    work: Callable[[str, Path], Any],
    on_done: Callable[[int], None] | None,
) -> None:
    def one(item: tuple[str, Path]) -> None:
        work(*item)
        if on_done:
            on_done(1)

    with ThreadPoolExecutor(_THREADS) as pool:
        list(pool.map(one, items))
