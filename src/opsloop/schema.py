"""The whole schema: every domain's tables gathered into one ``MetaData``, and stores opened at it.

The store cannot gather the tables itself: each domain owns its tables and sits above the
store, so the gathering happens here, on the floor above every domain, and the store is handed
the result. Whoever opens a store for a client or a server opens it through :func:`open_store`.
"""

from __future__ import annotations

from sqlalchemy import MetaData

from opsloop.store.database import Store

__all__ = ["metadata", "open_store"]


def metadata() -> MetaData:
    """Every table of every domain (what Alembic's autogenerate and ``create_all`` need).

    Imported when first asked, not with this module: opening a store that is already at the
    head schema needs none of them."""
    import opsloop.data.tables
    import opsloop.evaluation.tables
    import opsloop.lineage.tables
    import opsloop.llm.evals.tables
    import opsloop.llm.feedback.tables
    import opsloop.llm.prompts.tables
    import opsloop.llm.tracing.tables
    import opsloop.monitoring.tables
    import opsloop.pipelines.tables
    import opsloop.registry.tables
    import opsloop.serving.tables
    import opsloop.tracking.tables  # noqa: F401  (each table module adds its tables to Base)
    from opsloop.store.base import Base

    return Base.metadata


def open_store(url: str) -> Store:
    """The metadata store at ``url``, brought to this version's schema if it is behind
    (an empty database gets the head schema in one step; an older one is migrated)."""
    return Store(url, schema=metadata)
