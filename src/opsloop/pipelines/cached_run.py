"""A pipeline run whose every step is cached, recorded without SQLAlchemy.

Re-running an unchanged pipeline should cost what checking it costs. Through the client it
cost half a second as a CLI process on a small machine, and most of that was importing
SQLAlchemy, its ORM and its dialects (~0.25 s), not the work. So when a pipeline runs on the
embedded store (a SQLite file and a local blob folder, at this version's schema), this reads
the cache index with the standard library's ``sqlite3``, computes every step's key as the
runner does, and, if every one is a hit whose outputs are still stored, writes the pipeline's
run and its cached step runs in one transaction: the records the runner would have written
(:func:`opsloop.tracking.run_records.insert_runs`, the same code and SQL). Anything else (a
miss, ``cache=False``, a history longer than the index reads, an older schema, a server, a
Postgres store) returns None, and the caller runs the pipeline the usual way.

Outputs are not loaded (no step runs, so nothing needs them) until ``PipelineRun.outputs``
is read: then each step's come from the blob store, as a cached step's do in the runner.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opsloop.kernel import ambient
from opsloop.kernel.timeutil import now_ms
from opsloop.pipelines.cache_index import INDEX_TAGS
from opsloop.pipelines.cache_index import OUTPUTS_TAG
from opsloop.pipelines.cache_index import Seen
from opsloop.pipelines.cache_index import index_of
from opsloop.pipelines.graph import Graph
from opsloop.pipelines.graph import Node
from opsloop.pipelines.hashing import code_hash
from opsloop.pipelines.hashing import env_hash
from opsloop.pipelines.runner import PipelineRun
from opsloop.pipelines.runner import cached_result
from opsloop.pipelines.runner import experiment_for
from opsloop.pipelines.runner import pipeline_tags
from opsloop.pipelines.runner import step_identity
from opsloop.pipelines.step_outputs import cached_run_tags
from opsloop.pipelines.step_outputs import load_outputs
from opsloop.pipelines.step_outputs import step_value
from opsloop.store.sql import Sql
from opsloop.store.sql import connect_sqlite
from opsloop.store.sql import in_list
from opsloop.store.sql import sqlite_path
from opsloop.store.sql import sqlite_transaction
from opsloop.tracking.run_records import NewRun
from opsloop.tracking.run_records import insert_runs
from opsloop.tracking.run_records import recent_run_tags

__all__ = ["run_all_cached"]

INDEX_PAGE = 1000  # step runs read, as many as the runner's index reads


def run_all_cached(
    graph: Graph, settings: Any, *, experiment: str | None, params: dict[str, Any],
    tags: dict[str, str],
) -> PipelineRun | None:  # fmt: skip
    """The pipeline's run, recorded from the cache, when every step is a hit; else None."""
    from opsloop.store.local_blobs import LocalBlobStore
    from opsloop.store.open_blobs import open_blob_store

    path = sqlite_path(settings.database_url)
    if settings.is_remote or path is None or not Path(path).is_file():
        return None
    if not all(node.step.cache for node in graph.nodes):
        return None
    blobs = open_blob_store(settings.blob_url, settings.storage_options)
    if not isinstance(blobs, LocalBlobStore):
        return None
    connection = connect_sqlite(path)
    try:
        with sqlite_transaction(connection) as sql:
            found = _hits(graph, sql, blobs, experiment_for(graph, experiment))
        if found is None:
            return None
        experiment_id, hits = found
        return _record(graph, connection, blobs, experiment_id, hits, params, tags)
    except sqlite3.Error:
        return None  # a database this code cannot read as it expects: the usual path decides
    finally:
        connection.close()


def _hits(
    graph: Graph, sql: Sql, blobs: Any, experiment: str
) -> tuple[str, list[tuple[Node, str, dict[str, str]]]] | None:
    """The experiment's id and, for every step in order, (node, source run, run tags)."""
    from opsloop.store.migrate import SCHEMA_HEAD

    if sql.rows("SELECT version_num FROM alembic_version") != [(SCHEMA_HEAD,)]:
        return None
    found = sql.rows("SELECT id, lifecycle_stage FROM experiments WHERE name = :name",
                     {"name": experiment})  # fmt: skip
    if not found or found[0][1] != "active":
        return None
    experiment_id = found[0][0]
    known = index_of(*recent_run_tags(sql, experiment_id, INDEX_TAGS, nested=True,
                                      limit=INDEX_PAGE))  # fmt: skip
    digests: dict[int, dict[str, str]] = {}  # node -> output -> digest
    code: dict[Any, tuple[str, str]] = {}  # a step used many times is hashed once
    hits = []
    for node in graph.nodes:  # built in order: a node's inputs come before it
        if node.step not in code:
            source_hash, libraries = code_hash(node.step.fn)
            code[node.step] = (source_hash, env_hash(libraries))
        inputs = {arg: digests[o.node][o.output] for arg, o in node.inputs.items()}
        key, _, step_tags = step_identity(node, code[node.step], inputs)
        hit: Seen | None = known.by_key.get(key)
        if hit is None:
            return None
        source, run_tags = cached_run_tags(hit, step_tags)
        described = json.loads(run_tags[OUTPUTS_TAG])
        digests[node.index] = {name: d["digest"] for name, d in described.items()}
        hits.append((node, source, run_tags))
    if not _outputs_stored(sql, blobs, sorted({source for _, source, _ in hits})):
        return None
    return experiment_id, hits


def _outputs_stored(sql: Sql, blobs: Any, sources: list[str]) -> bool:
    """Whether every output file of these runs is still in the blob store."""
    listed, bound = in_list("s", sources)
    rows = sql.rows(f"SELECT run_id, digest FROM artifacts WHERE run_id IN {listed}"
                    " AND path LIKE 'output/%'", bound)  # fmt: skip
    return {run_id for run_id, _ in rows} == set(sources) and not blobs.missing(
        digest for _, digest in rows
    )


def _record(
    graph: Graph, connection: sqlite3.Connection, blobs: Any, experiment_id: str,
    hits: list[tuple[Node, str, dict[str, str]]], params: dict[str, Any], tags: dict[str, str],
) -> PipelineRun:  # fmt: skip
    """Write the pipeline's run (its environment captured, as a client's run would be) and a
    finished, cached run per step, in one transaction."""
    start = now_ms()
    parent_id = uuid.uuid4().hex
    parent = NewRun(parent_id, experiment_id, graph.pipeline, start, status="FINISHED",
                    tags=pipeline_tags(graph, tags), params=params)  # fmt: skip
    if os.environ.get("OPSLOOP_CAPTURE_ENV", "1") != "0":
        _capture_environment(parent, blobs)
    records, steps = [parent], []
    for node, source, run_tags in hits:
        run_id = uuid.uuid4().hex
        records.append(NewRun(run_id, experiment_id, node.name, now_ms(), parent_id,
                              status="FINISHED", end_time=now_ms(), tags=run_tags))  # fmt: skip
        steps.append(cached_result(node.name, run_id, source, run_tags))
    parent.end_time = now_ms()
    with sqlite_transaction(connection, write=True) as sql:
        insert_runs(sql, blobs, records)
    outputs = CachedOutputs(blobs, {node.name: (node, source, json.loads(run_tags[OUTPUTS_TAG]))
                                    for node, source, run_tags in hits})  # fmt: skip
    return PipelineRun(parent_id, graph.pipeline, "FINISHED", steps=steps, outputs=outputs)


class CachedOutputs(Mapping[str, Any]):
    """A fully cached run's outputs by step, each read from the store when first asked for:
    a run nobody asks the values of (the CLI's) never loads them."""

    def __init__(self, blobs: Any, steps: dict[str, tuple[Node, str, dict[str, Any]]]) -> None:
        self._blobs = blobs
        self._steps = steps  # step -> (node, source run, described outputs)
        self._loaded: dict[str, Any] = {}

    def _blob_path(self, digest: str) -> Path | None:
        path = self._blobs.path_of(digest)
        return path if path.is_file() else None

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            node, source, described = self._steps[name]

            def download() -> Path:  # a model package: its files, from the run that made it
                folder = Path(tempfile.mkdtemp(prefix="opsloop-outputs-"))
                return ambient.default_client().download_artifacts(source, "output", folder)

            outputs = load_outputs(described, self._blob_path, download)
            self._loaded[name] = step_value(node, outputs)
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._steps)

    def __len__(self) -> int:
        return len(self._steps)


def _capture_environment(run: Any, blobs: Any) -> None:
    """Git state, command, host, package lock and source tree on the run, as ``create_run``
    records them; their blobs stored first."""
    from opsloop.tracking.reproducibility import capture_environment

    env = capture_environment()
    run.tags.update(env.tags)
    run.artifacts += env.store(blobs)
