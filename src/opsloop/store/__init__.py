"""The metadata store (SQLAlchemy + Alembic, ``store.database``) and the content-addressed blob
store (``store.blobs``). Import the submodule you need: the blob store must stay importable
without SQLAlchemy, so that local data commands start fast."""
