"""Walking the lineage graph from one node: what it came from (upstream) and what used it
(downstream), with each node named the way people refer to it (``churn@3``, ``iris@2``, a run's
name and id, a git commit).

A run's code commit is not an edge in the graph but a tag the run carries
(``opsloop.git.commit``); the walk shows it as the run's upstream ``commit`` node so that
"which code made this model" is part of the same answer.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.lineage import graph

__all__ = ["KINDS", "lineage", "resolve_node"]

KINDS = ("model", "data", "run")
_MAX_DEPTH = 8


def resolve_node(session: Session, kind: str, ref: str) -> tuple[str, str]:
    """The graph node for ``ref``: a model version, a dataset version or a run."""
    if kind == "model":
        from opsloop.registry.models import MODEL_VERSION, resolve_version_row

        return MODEL_VERSION, resolve_version_row(session, ref)[1].id
    if kind == "data":
        from opsloop.data.versions import version_row

        return graph.DATASET_VERSION, version_row(session, ref)[1].id
    if kind == "run":
        from opsloop.tracking.runs import require_run

        return graph.RUN, require_run(session, ref).id
    raise InvalidInput(f"unknown lineage kind {kind!r}; one of {list(KINDS)}")


def _label(session: Session, node: tuple[str, str]) -> dict[str, Any]:
    kind, node_id = node
    out: dict[str, Any] = {"type": kind, "id": node_id, "label": node_id}
    if kind == graph.RUN:
        from opsloop.tracking.tables import RunRow, RunTagRow

        run = session.get(RunRow, node_id)
        if run is not None:
            out["label"] = f"run {run.name} ({node_id[:8]}, {run.status})"
            commit = session.scalar(
                select(RunTagRow.value).where(
                    RunTagRow.run_id == node_id, RunTagRow.key == "opsloop.git.commit"
                )
            )
            if commit:
                out["commit"] = commit
            if run.parent_run_id:
                out["parent_run_id"] = run.parent_run_id
    elif kind == graph.DATASET_VERSION:
        from opsloop.data.tables import DatasetRow, DatasetVersionRow

        row = session.get(DatasetVersionRow, node_id)
        if row is not None:
            dataset = session.get(DatasetRow, row.dataset_id)
            if dataset is not None:
                out["ref"] = f"{dataset.name}@{row.number}"
                out["label"] = f"data {out['ref']}"
    elif kind == "model_version":
        from opsloop.registry.tables import ModelVersionRow, RegisteredModelRow

        row = session.get(ModelVersionRow, node_id)
        if row is not None:
            model = session.get(RegisteredModelRow, row.model_id)
            if model is not None:
                out["ref"] = f"{model.name}@{row.number}"
                out["label"] = f"model {out['ref']}"
    elif kind == "trace":
        from opsloop.llm.tracing.tables import TraceRow

        row = session.get(TraceRow, node_id)
        if row is not None:
            out["label"] = f"trace {row.name} ({node_id[:8]})"
    elif kind == "evaluation":
        from opsloop.evaluation.tables import EvaluationRow

        row = session.get(EvaluationRow, node_id)
        if row is not None:
            on = f" on {row.dataset_ref}" if row.dataset_ref else ""
            out["label"] = f"evaluation {node_id[:8]} of {row.model_ref}{on}"
    return out


def _neighbours(
    session: Session, node: tuple[str, str], label: dict[str, Any], upstream: bool
) -> list[tuple[tuple[str, str], str]]:
    """Adjacent nodes with the relation: graph edges, plus a nested run's parent (upstream)."""
    found = []
    for edge in graph.edges_touching(session, node):
        if upstream and (edge.target_type, edge.target_id) == node:
            found.append(((edge.source_type, edge.source_id), edge.relation))
        elif not upstream and (edge.source_type, edge.source_id) == node:
            found.append(((edge.target_type, edge.target_id), edge.relation))
    if upstream and label.get("parent_run_id"):
        found.append(((graph.RUN, label["parent_run_id"]), "parent"))
    return found


def _walk(
    session: Session,
    node: tuple[str, str],
    label: dict[str, Any],
    upstream: bool,
    depth: int,
    seen: set[Any],
) -> list[dict[str, Any]]:
    out = []
    if upstream and label.get("commit"):
        commit = {"type": "commit", "id": label["commit"], "label": f"git {label['commit'][:12]}"}
        out.append(commit | {"relation": "code", "children": []})
    if depth >= _MAX_DEPTH:
        return out
    for other, relation in _neighbours(session, node, label, upstream):
        if other in seen:
            continue
        seen.add(other)
        item = _label(session, other) | {"relation": relation}
        item["children"] = _walk(session, other, item, upstream, depth + 1, seen)
        out.append(item)
    return out


def lineage(session: Session, kind: str, ref: str) -> dict[str, Any]:
    """``{"node": ..., "upstream": [tree], "downstream": [tree]}`` around ``ref``."""
    node = resolve_node(session, kind, ref)
    root = _label(session, node)
    return {
        "node": root,
        "upstream": _walk(session, node, root, True, 0, {node}),
        "downstream": _walk(session, node, root, False, 0, {node}),
    }
