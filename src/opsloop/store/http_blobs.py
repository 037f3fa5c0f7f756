"""A server's blob store seen from a client: the blob routes of ``opsloop server``.

The same content-addressed contract as :class:`~opsloop.store.blobs.BlobStore` (``missing``,
bulk ``put_verified`` / ``get_many``), so code that moves blobs works unchanged whether it
talks to the store directly or to a server. Tracking and data both upload through here.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from opsloop.errors import StoreError
from opsloop.kernel.transport import HttpTransport
from opsloop.store import blob_routes
from opsloop.store.blobs import Downloads
from opsloop.store.blobs import OnDone
from opsloop.store.blobs import Sizes
from opsloop.store.blobs import Uploads
from opsloop.store.blobs import in_threads
from opsloop.store.packs import PACK_BLOB_MAX
from opsloop.store.packs import frame
from opsloop.store.packs import frame_files
from opsloop.store.packs import plan_packs
from opsloop.store.packs import unframe

__all__ = ["HttpBlobRemote"]

_JSON = {"Content-Type": "application/json"}
_OCTETS = {"Content-Type": "application/octet-stream"}
_BATCHES_AT_ONCE = 4  # batches in flight (each up to 64 MiB in memory)
_RETRYABLE_UPLOAD_BYTES = 64 << 20
_THREADS = 8


class HttpBlobRemote:
    """Blobs through ``/api/blobs`` of one server (paths: :mod:`opsloop.store.blob_routes`)."""

    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport
        self.url = transport.base_url

    def missing(self, digests: list[str]) -> list[str]:
        """The digests the server lacks."""
        body = json.dumps({"digests": list(digests)})
        found: list[str] = self.http.json(
            "POST", blob_routes.BLOBS_MISSING.url(), content=body, headers=_JSON
        )["digests"]
        return found

    def put_file(self, path: Path, digest: str) -> str:
        """Upload one file; the server hashes it and refuses it unless it matches."""
        url = blob_routes.BLOB.url(digest=digest)
        if path.stat().st_size <= _RETRYABLE_UPLOAD_BYTES:
            self.http.request("PUT", url, content=path.read_bytes())
        else:  # streamed from disk: a retry would need to rewind, so none is made
            with open(path, "rb") as fh:
                self.http.request("PUT", url, content=fh, idempotent=False)
        return digest

    def get_file(self, digest: str, dest: Path) -> Path:
        """Write the blob to ``dest`` through a temp file (never half-written)."""
        self.http.download(blob_routes.BLOB.url(digest=digest), dest)
        return dest

    def put_verified(self, items: Uploads, on_done: OnDone | None = None) -> None:
        """Small blobs go up in batches of up to 64 MiB (one request each), the rest one by
        one: a request per 1 KB file would cost more than its bytes."""
        loose, batches = plan_packs(items)

        def upload_batch(group: list[tuple[Path, str]]) -> None:
            self.http.request(
                "POST", blob_routes.BLOBS_BATCH.url(), content=frame_files(group), headers=_OCTETS
            )
            if on_done:
                on_done(len(group))

        with ThreadPoolExecutor(_BATCHES_AT_ONCE) as pool:
            list(pool.map(upload_batch, batches))
        in_threads(loose, self.put_file, on_done, _THREADS)

    def put_verified_bytes(self, blobs: list[tuple[str, bytes | memoryview]]) -> None:
        """Blobs held in memory: small ones in batches, the rest one request each."""
        loose, batches = plan_packs(blobs, lambda blob: len(blob[1]))
        for group in batches:
            self.http.request(
                "POST", blob_routes.BLOBS_BATCH.url(), content=frame(group), headers=_OCTETS
            )
        for digest, data in loose:
            self.http.request("PUT", blob_routes.BLOB.url(digest=digest), content=bytes(data))

    def get_many(
        self, items: Downloads, on_done: OnDone | None = None, sizes: Sizes | None = None
    ) -> None:
        """Blobs ``sizes`` says are small come down in batches, the rest one by one."""
        known = sizes or {}
        loose, groups = plan_packs(items, lambda item: known.get(item[0], PACK_BLOB_MAX))

        def download_batch(group: list[tuple[str, Path]]) -> None:
            body = json.dumps({"digests": [d for d, _ in group]})
            raw = self.http.request(
                "POST", blob_routes.BLOBS_BATCH_DOWNLOAD.url(), content=body, headers=_JSON
            ).content
            try:
                received = dict(unframe(raw))
            except ValueError as exc:
                raise StoreError(f"{self.url} sent a malformed batch: {exc}") from None
            for digest, dest in group:
                if digest not in received:
                    raise StoreError(f"{self.url} left blob {digest} out of a batch")
                dest.write_bytes(received[digest])
            if on_done:
                on_done(len(group))

        with ThreadPoolExecutor(_BATCHES_AT_ONCE) as pool:
            list(pool.map(download_batch, groups))
        in_threads(loose, self.get_file, on_done, _THREADS)
