"""Data versions as step inputs: a step param annotated ``DataVersion`` takes a reference.

::

    from opsloop.pipelines import DataVersion, pipeline, step

    @step
    def load(data: DataVersion) -> pd.DataFrame:
        return data.to_pandas()

    training.run(data="churn@champion")

Before anything runs, every such reference is resolved to one version (``churn@champion`` →
``churn@4``); an unknown one stops the pipeline there, with nothing started. The step gets a
:class:`~opsloop.data.sdk.DataVersion` handle on that version, so the whole run reads one
version even if the alias moves meanwhile. The version's content, not the words that named
it, is the step's cache key (its ``data`` part: the manifest hash), so a moved alias is a
miss that says "data changed" and the same content under another name is a hit. The pipeline's
run records what each reference resolved to (``opsloop.pipeline.data``), which ``resume`` and
``reproduce`` pin again, and it and every step that computed consume the version (lineage).
"""

from __future__ import annotations

import json
from typing import Any

from opsloop.errors import NotFound
from opsloop.pipelines.graph import Graph

__all__ = ["DATA_TAG", "data_handle", "data_tags", "resolve_data_inputs"]

DATA_TAG = "opsloop.pipeline.data"  # JSON: each reference given -> the NAME@N it resolved to


def resolve_data_inputs(
    graph: Graph, client: Any, pinned: dict[str, str] | None = None
) -> dict[str, str]:
    """Resolve each ``DataVersion`` param of ``graph`` (``pinned`` first: reference → the
    version to use); fill ``node.data`` and return reference → ``NAME@N``.

    Raises:
        NotFound: a reference names no version; the message says which step and param.
    """
    resolved: dict[str, Any] = {}
    for node in graph.nodes:
        for arg in sorted(node.step.data_args):
            ref = node.params[arg]
            if ref not in resolved:
                try:
                    resolved[ref] = client.data.version((pinned or {}).get(ref, ref))
                except NotFound as exc:
                    where = f"step {node.name!r} takes data version {ref!r} as {arg!r}"
                    raise NotFound(f"{where}: {exc.message}") from None
            node.data[arg] = resolved[ref]
    return {ref: version.ref for ref, version in resolved.items()}


def data_tags(resolved: dict[str, str]) -> dict[str, str]:
    """The pipeline run's record of what its data references resolved to."""
    return {DATA_TAG: json.dumps(resolved, sort_keys=True)} if resolved else {}


def data_handle(client: Any, version: Any) -> Any:
    """The handle a step receives for a resolved version."""
    from opsloop.data.sdk import DataVersion

    return DataVersion(client.data, version)
