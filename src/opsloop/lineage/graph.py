"""Writing and reading lineage edges; every domain records its edges through here.

Edges are idempotent: recording the same (source, target, relation) twice keeps one edge, so a
retried request or a re-run step never duplicates the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.kernel.timeutil import now_ms
from opsloop.lineage.tables import LineageEdgeRow
from opsloop.store.database import dialect_insert

__all__ = ["DATASET_VERSION", "RUN", "Edge", "add_edge", "edges_touching", "remove_edges"]

RUN = "run"
DATASET_VERSION = "dataset_version"


@dataclass(frozen=True)
class Edge:
    source_type: str
    source_id: str
    target_type: str
    target_id: str
    relation: str
    created_at: int


_INSERTS: dict[str, Any] = {}


def add_edge(
    session: Session,
    source: tuple[str, str],
    target: tuple[str, str],
    relation: str,
) -> None:
    """Record ``source --relation--> target`` once."""
    dialect = session.get_bind().dialect.name
    insert = _INSERTS.get(dialect)
    if insert is None:  # built once per dialect: edges are written on hot paths
        insert = dialect_insert(session, LineageEdgeRow.__table__).on_conflict_do_nothing()
        _INSERTS[dialect] = insert
    session.connection().execute(
        insert,
        {
            "source_type": source[0],
            "source_id": source[1],
            "target_type": target[0],
            "target_id": target[1],
            "relation": relation,
            "created_at": now_ms(),
        },
    )


def remove_edges(session: Session, source: tuple[str, str], relation: str) -> None:
    """Forget every ``source --relation--> *`` edge (a deployment that stopped serving)."""
    from sqlalchemy import delete

    session.execute(
        delete(LineageEdgeRow).where(
            LineageEdgeRow.source_type == source[0],
            LineageEdgeRow.source_id == source[1],
            LineageEdgeRow.relation == relation,
        )
    )


def edges_touching(session: Session, node: tuple[str, str]) -> list[Edge]:
    """Every edge into or out of ``node``, oldest first."""
    row = LineageEdgeRow
    query = (
        select(row)
        .where(
            or_(
                (row.source_type == node[0]) & (row.source_id == node[1]),
                (row.target_type == node[0]) & (row.target_id == node[1]),
            )
        )
        .order_by(row.created_at, row.id)
    )
    return [
        Edge(r.source_type, r.source_id, r.target_type, r.target_id, r.relation, r.created_at)
        for r in session.scalars(query)
    ]
