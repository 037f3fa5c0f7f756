"""The blob routes' paths, written once: ``opsloop.tracking.api`` declares them and
:class:`~opsloop.store.http_blobs.HttpBlobRemote` requests them. They live on the store floor,
not in ``tracking/routes.py``, because the store (which holds the client side) cannot import
a domain above it.
"""

from __future__ import annotations

from opsloop.kernel.routes import Route

__all__ = ["BLOB", "BLOBS_BATCH", "BLOBS_BATCH_DOWNLOAD", "BLOBS_MISSING"]

BLOBS_MISSING = Route("/blobs/missing")
BLOBS_BATCH = Route("/blobs/batch")
BLOBS_BATCH_DOWNLOAD = Route("/blobs/batch-download")
BLOB = Route("/blobs/{digest}")
