"""Walking the lineage graph from one node: what it came from (upstream) and what used it
(downstream), with each node named the way people refer to it (``churn@3``, ``iris@2``, a run's
name and id, a git commit).

A run's code commit is not an edge in the graph but a tag the run carries
(``opsloop.git.commit``); the walk shows it as the run's upstream ``commit`` node so that
"which code made this model" is part of the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from typing import Protocol

from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.lineage import graph

__all__ = ["LineageCatalog", "NodeKind"]

_MAX_DEPTH = 8


class NodeLabeler(Protocol):
    def __call__(self, session: Session, node_id: str) -> dict[str, Any]:
        """What people call the node (``label``, maybe ``ref``, ``commit``, ``parent_run_id``);
        an empty dict when it is gone."""


class NodeResolver(Protocol):
    def __call__(self, session: Session, ref: str) -> str:
        """The node id of ``ref`` (``NotFound`` when there is none)."""


@dataclass(frozen=True)
class NodeKind:
    """How one domain's nodes appear in a walk. Each domain that owns nodes describes them
    (``tracking.runs``, ``data.versions``, ``registry.models``, ...); whoever assembles the
    catalog hands them in, so the walk imports none of them.

    ``kind`` and ``resolve`` are set for nodes people start a walk from (``model``, ``data``,
    ``run``)."""

    node_type: str
    label: NodeLabeler
    kind: str | None = None
    resolve: NodeResolver | None = None


class LineageCatalog:
    """The walk over the graph, knowing every kind of node it may meet."""

    def __init__(self, kinds: list[NodeKind]) -> None:
        self._by_type = {k.node_type: k for k in kinds}
        self._startable = {k.kind: k for k in kinds if k.kind and k.resolve}

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds a walk can start from."""
        return tuple(self._startable)

    def resolve_node(self, session: Session, kind: str | None, ref: str) -> tuple[str, str]:
        """The graph node for ``ref``: a model version, a dataset version or a run. Without a
        ``kind``, whichever kind has something named ``ref`` (see :meth:`kind_of`)."""
        if kind is None:
            kind = self.kind_of(session, ref)
        found = self._startable.get(kind)
        if found is None or found.resolve is None:
            raise InvalidInput(f"unknown lineage kind {kind!r}; one of {list(self.kinds)}")
        return found.node_type, found.resolve(session, ref)

    def kind_of(self, session: Session, ref: str) -> str:
        """The one kind with something named ``ref`` (``churn@3``: a model version, or a
        dataset version, or a run id), so people need not say which.

        Raises:
            InvalidInput: several kinds have it (the message names them, to choose one), or
                ``ref`` is malformed for every kind.
            NotFound: none has it; the message names every kind searched.
        """
        matches: list[str] = []
        malformed: list[InvalidInput] = []
        for kind, described in self._startable.items():
            assert described.resolve is not None  # startable kinds have a resolver
            try:
                described.resolve(session, ref)
            except NotFound:
                continue
            except InvalidInput as exc:  # e.g. NAME@N is no run id
                malformed.append(exc)
                continue
            matches.append(kind)
        if len(matches) == 1:
            return matches[0]
        nouns = {kind: _noun(self._startable[kind].node_type) for kind in self._startable}
        if matches:
            raise InvalidInput(
                f"{ref!r} names a " + " and a ".join(nouns[k] for k in matches)
                + "; say which with kind (--kind): " + " or ".join(matches),
                details={"ref": ref, "kinds": matches},
            )  # fmt: skip
        if len(malformed) == len(self._startable):
            raise malformed[0]  # no kind could even read it
        raise NotFound(
            f"nothing named {ref!r} to show the lineage of: searched "
            + ", ".join(f"{nouns[k]}s" for k in self._startable),
            details={"ref": ref, "searched": list(self._startable)},
        )

    def label(self, session: Session, node: tuple[str, str]) -> dict[str, Any]:
        kind, node_id = node
        out: dict[str, Any] = {"type": kind, "id": node_id, "label": node_id}
        described = self._by_type.get(kind)
        if described is not None:
            out.update(described.label(session, node_id))
        return out

    def lineage(self, session: Session, kind: str | None, ref: str) -> dict[str, Any]:
        """``{"node": ..., "upstream": [tree], "downstream": [tree]}`` around ``ref``, of
        ``kind`` or (None) of whichever kind has something named ``ref``."""
        node = self.resolve_node(session, kind, ref)
        root = self.label(session, node)
        return {
            "node": root,
            "upstream": self._walk(session, node, root, True, 0, {node}),
            "downstream": self._walk(session, node, root, False, 0, {node}),
        }

    def _walk(
        self,
        session: Session,
        node: tuple[str, str],
        label: dict[str, Any],
        upstream: bool,
        depth: int,
        seen: set[Any],
    ) -> list[dict[str, Any]]:
        out = []
        if upstream and label.get("commit"):
            commit = {
                "type": "commit", "id": label["commit"], "label": f"git {label['commit'][:12]}"
            }  # fmt: skip
            out.append(commit | {"relation": "code", "children": []})
        if depth >= _MAX_DEPTH:
            return out
        for other, relation in _neighbours(session, node, label, upstream):
            if other in seen:
                continue
            seen.add(other)
            item = self.label(session, other) | {"relation": relation}
            item["children"] = self._walk(session, other, item, upstream, depth + 1, seen)
            out.append(item)
        return out


def _noun(node_type: str) -> str:
    """``model_version`` → ``model version``: how a message names a kind of node."""
    return node_type.replace("_", " ")


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
