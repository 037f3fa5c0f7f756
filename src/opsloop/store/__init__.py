"""The metadata store (SQLAlchemy + Alembic) and the content-addressed blob store."""

from opsloop.store.base import Base
from opsloop.store.blobs import BlobStore, open_blob_store
from opsloop.store.database import Store

__all__ = ["Base", "BlobStore", "Store", "open_blob_store"]
