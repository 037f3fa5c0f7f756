"""Choosing a blob store from a URL.

The factory knows every backend, so it lives above them: :mod:`opsloop.store.blobs` (the
contract and the local store) and :mod:`opsloop.store.object_blobs` (object stores, built on
that contract) then import each other in one direction only.
"""

from __future__ import annotations

from typing import Any

from opsloop.store.blobs import BlobStore
from opsloop.store.local_blobs import LocalBlobStore

__all__ = ["open_blob_store"]


def open_blob_store(url: str, storage_options: dict[str, Any] | None = None) -> BlobStore:
    """The blob store for a URL: a plain path or ``file://`` is local, anything else fsspec."""
    if "://" not in url:
        return LocalBlobStore(url)
    if url.startswith("file://"):
        return LocalBlobStore(url[len("file://") :])
    from opsloop.store.object_blobs import FsspecBlobStore  # fsspec loads only when needed

    return FsspecBlobStore(url, storage_options)
