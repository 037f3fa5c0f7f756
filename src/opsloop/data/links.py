"""What lies one step from a data version in the lineage graph, of every kind, named.

``opsloop data show``, ``GET /api/datasets/{name}/versions/{v}/lineage`` and the SDK's
``client.data.lineage`` answer from here: not only the runs that logged a version, but the
model version and input behind a batch output and the traces behind a feedback export.
"""

from __future__ import annotations

from typing import Any
from typing import Protocol

from sqlalchemy.orm import Session

from opsloop.data.entities import LineageLink
from opsloop.data.versions import version_lineage_label
from opsloop.data.versions import version_row
from opsloop.lineage import graph

__all__ = ["NodeLabels", "version_lineage"]


class NodeLabels(Protocol):
    """Names for lineage nodes of every domain (the lineage catalog, which the server's app
    and whoever assembles a client hand in): the data domain can name only what lies below
    it (runs) and its own versions."""

    def label(self, session: Session, node: tuple[str, str]) -> dict[str, Any]: ...


def version_lineage(
    session: Session, ref: str, labels: NodeLabels | None = None
) -> list[LineageLink]:
    """Everything one step from a version, upstream (the run that produced it, the model
    version that predicted it and the data it scored, the traces it was exported from) and
    downstream (the runs, evaluations and batches that used it), oldest first. Without
    ``labels`` a model version or a trace is shown by its kind and short id."""
    _, row = version_row(session, ref)
    node = (graph.DATASET_VERSION, row.id)
    name = labels.label if labels is not None else _own_label
    links = []
    for edge in graph.edges_touching(session, node):
        upstream = (edge.target_type, edge.target_id) == node
        other = (
            (edge.source_type, edge.source_id) if upstream else (edge.target_type, edge.target_id)
        )
        described = name(session, other)
        links.append(
            LineageLink(
                relation=edge.relation,
                run_id=other[1] if other[0] == graph.RUN else None,
                created_at=edge.created_at,
                direction="upstream" if upstream else "downstream",
                node_type=other[0],
                node_id=other[1],
                label=str(described.get("label") or _plain_label(other)),
                ref=described.get("ref"),
            )
        )
    return links


def _own_label(session: Session, node: tuple[str, str]) -> dict[str, Any]:
    """A node's name as far as this domain knows it (runs, dataset versions)."""
    from opsloop.tracking.runs import run_lineage_label

    if node[0] == graph.RUN:
        return run_lineage_label(session, node[1])
    if node[0] == graph.DATASET_VERSION:
        return version_lineage_label(session, node[1])
    return {}


def _plain_label(node: tuple[str, str]) -> str:
    return f"{node[0].replace('_', ' ')} {node[1][:8]}"
