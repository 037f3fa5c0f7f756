"""What the store holds, gathered from every domain: their tables in one ``MetaData`` (and
stores opened at that schema), and their kinds of lineage node in one catalog.

Neither the store nor the lineage walk can gather these themselves: each domain owns its tables
and its nodes and sits above both, so the gathering happens here, on the floor above every
domain, and the store and the walk are handed the result. Whoever opens a store for a client
or a server opens it through :func:`open_store`.
"""

from __future__ import annotations

from sqlalchemy import MetaData

from opsloop.lineage.walk import LineageCatalog
from opsloop.lineage.walk import NodeKind
from opsloop.store.database import Store

__all__ = ["lineage_catalog", "metadata", "open_store"]


def metadata() -> MetaData:
    """Every table of every domain (what Alembic's autogenerate and ``create_all`` need).

    Imported when first asked, not with this module: opening a store that is already at the
    head schema needs none of them."""
    import opsloop.data.tables
    import opsloop.governance.tables
    import opsloop.lineage.tables
    import opsloop.llm.evals.tables
    import opsloop.llm.feedback.tables
    import opsloop.llm.gateway.rollout_tables
    import opsloop.llm.prompts.tables
    import opsloop.llm.tracing.tables
    import opsloop.monitoring.tables
    import opsloop.pipelines.tables
    import opsloop.registry.tables
    import opsloop.serving.tables
    import opsloop.store.leases
    import opsloop.tracking.tables
    import opsloop.web.sessions  # noqa: F401  (each table module adds its tables to Base)
    from opsloop.store.base import Base

    return Base.metadata


def open_store(url: str, *, sqlite_synchronous: str = "normal") -> Store:
    """The metadata store at ``url``, brought to this version's schema if it is behind
    (an empty database gets the head schema in one step; an older one is migrated)."""
    return Store(url, schema=metadata, sqlite_synchronous=sqlite_synchronous)


def lineage_catalog() -> LineageCatalog:
    """Every kind of node a lineage walk may meet, described by the domain that owns it."""
    from opsloop.data import versions as data_versions
    from opsloop.lineage import graph
    from opsloop.llm.tracing.services import trace_lineage_label
    from opsloop.registry import models
    from opsloop.registry import versions
    from opsloop.registry.evaluations import EVALUATION
    from opsloop.registry.evaluations import evaluation_lineage_label
    from opsloop.tracking.runs import run_lineage_label
    from opsloop.tracking.runs import run_node_id

    return LineageCatalog([
        NodeKind(models.MODEL_VERSION, versions.version_lineage_label, "model",
                 versions.version_node_id),
        NodeKind(graph.DATASET_VERSION, data_versions.version_lineage_label, "data",
                 data_versions.version_node_id),
        NodeKind(graph.RUN, run_lineage_label, "run", run_node_id),
        NodeKind("trace", trace_lineage_label),
        NodeKind(EVALUATION, evaluation_lineage_label),
    ])  # fmt: skip
