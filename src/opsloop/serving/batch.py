"""Batch inference: a registered model over a data version or a Parquet / CSV / JSON-lines
path, in chunks, written as a new data version linked to the model version and the input.

Rows are streamed through ``pyarrow.dataset`` in ``chunk_rows`` batches (so a table larger
than memory works), each chunk checked against the model's signature and predicted, in this
process or (``executor="ray"``) as Ray tasks on the cluster at ``RAY_ADDRESS`` or a local Ray
instance, each worker loading the model once. Unless the caller sets ``chunk_rows``, a Ray
batch is cut into about two chunks per CPU of the cluster (see :func:`default_chunk_rows`), so
a 50,000-row table keeps every CPU busy instead of being one task; in this process chunks are
50,000 rows (only memory bounds them). Results come back in order and are appended to
one Parquet file with the input's columns plus ``prediction`` (and
``proba_<class>`` columns with ``proba=True``). The output is added as the next version of
``output`` and lineage records ``model_version -predicted-> dataset_version`` and
``dataset_version (input) -scored-> dataset_version (output)``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Protocol

from opsloop.config import Settings
from opsloop.errors import InvalidInput
from opsloop.kernel import ambient
from opsloop.kernel.ray_cluster import connect_ray
from opsloop.serving.ports import DataSource
from opsloop.serving.ports import ModelSource

__all__ = ["BatchLineage", "BatchResult", "default_chunk_rows", "predict_batch", "score_chunk"]

_FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}
MIN_CHUNK_ROWS = 1_000  # below this a Ray task costs more to schedule than to score
MAX_CHUNK_ROWS = 50_000  # above this a chunk's frame and predictions weigh on memory


def default_chunk_rows(total_rows: int, cpus: int) -> int:
    """Rows per chunk for ``total_rows`` on ``cpus`` CPUs: two chunks per CPU (so a slow chunk
    does not leave the others idle at the end), within [1,000, 50,000] rows."""
    wanted = -(-total_rows // max(1, cpus * 2))  # ceil
    return min(MAX_CHUNK_ROWS, max(MIN_CHUNK_ROWS, wanted))


@dataclass(frozen=True)
class BatchResult:
    output: str  # the data version written, NAME@N
    rows: int
    chunks: int
    model: str


class BatchLineage(Protocol):
    """Where a batch inference's lineage is recorded: a ``DeploymentBackend``."""

    def record_batch(self, model_ref: str, input_ref: str | None, output_ref: str) -> None:
        """Model version ``model_ref`` predicted data version ``output_ref`` from
        ``input_ref`` (a data version, or None for a path); ``NotFound`` for a missing one."""
        ...


def _dataset(data: DataSource, source: str | Path) -> tuple[Any, str | None]:
    """A pyarrow dataset over the source, and the input's data version ref (if it is one)."""
    import pyarrow.dataset as ds

    path = Path(source)
    if not path.exists() and "@" in str(source):
        version = data.get(str(source))
        fmt = version.info.table.format if version.info.table else None
        if fmt is None:
            raise InvalidInput(f"{source} is not a table (CSV, Parquet or JSON lines)")
        root = version.path()
        files = (
            [str(root)]
            if root.is_file()
            else [str(root / e.path) for e in version.manifest.entries]
        )
        return ds.dataset(files, format={"jsonl": "json"}.get(fmt, fmt)), version.ref
    if not path.exists():
        raise InvalidInput(f"{source} is neither a data version (NAME@N) nor an existing path")
    files = sorted(p for p in path.rglob("*") if p.suffix in _FORMATS) if path.is_dir() else [path]
    formats = {_FORMATS.get(p.suffix) for p in files}
    if not files or None in formats or len(formats) != 1:
        raise InvalidInput(f"{source}: give Parquet, CSV or JSON-lines files of one format")
    return ds.dataset([str(p) for p in files], format=formats.pop()), None


def predict_batch(
    model_ref: str,
    source: str | Path,
    output: str,
    *,
    models: ModelSource,
    data: DataSource,
    lineage: BatchLineage,
    settings: Settings,
    chunk_rows: int | None = None,
    proba: bool = False,
    message: str | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
    executor: str = "local",
) -> BatchResult:
    """Score ``source`` with ``model_ref`` and save the result as the next version of ``output``.

    ``chunk_rows`` left out: 50,000 here, or split across the Ray cluster's CPUs
    (:func:`default_chunk_rows`). ``on_chunk(rows_done, rows_total)`` reports progress after
    each chunk. ``models`` loads
    the model, ``data`` reads the input and writes the output, ``lineage`` records the batch;
    Ray workers open their own client on ``settings``.
    """
    import pyarrow.parquet as pq

    if chunk_rows is not None and chunk_rows < 1:
        raise InvalidInput("chunk_rows must be at least 1")
    if executor not in ("local", "ray"):
        raise InvalidInput(f"executor {executor!r}: choose local or ray")
    model = models.load(model_ref)
    dataset, input_ref = _dataset(data, source)
    total = dataset.count_rows()
    if executor == "ray":
        cpus = _ray_cpus()
        rows = chunk_rows or default_chunk_rows(total, cpus)
        scored = _on_ray(settings, str(model.ref), _batches(dataset, rows), proba, cpus)
    else:
        rows = chunk_rows or MAX_CHUNK_ROWS
        scored = (score_chunk(model, b, proba) for b in _batches(dataset, rows))
    done = chunks = 0
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "predictions.parquet"
        writer = None
        for table in scored:
            if writer is None:
                writer = pq.ParquetWriter(target, table.schema)
            writer.write_table(table)
            done, chunks = done + table.num_rows, chunks + 1
            if on_chunk is not None:
                on_chunk(done, total)
        if writer is None:
            raise InvalidInput(f"{source} has no rows to score")
        writer.close()
        added = data.add(
            target, output, message=message or f"{model.ref} predictions on {input_ref or source}"
        )
    ref = str(added.version.ref)
    lineage.record_batch(str(model.ref), input_ref, ref)
    return BatchResult(output=ref, rows=done, chunks=chunks, model=str(model.ref))


def _batches(dataset: Any, rows: int) -> Any:
    return (b for b in dataset.to_batches(batch_size=rows) if b.num_rows)


def score_chunk(model: Any, batch: Any, proba: bool) -> Any:
    """One chunk (an Arrow record batch) with its ``prediction`` (and ``proba_*``) columns."""
    import pyarrow as pa

    frame = batch.to_pandas()
    frame["prediction"] = list(model.predict(frame))
    if proba:
        probabilities = model.predict_proba(frame)
        for i, label in enumerate(model.classes or range(probabilities.shape[1])):
            frame[f"proba_{label}"] = probabilities[:, i]
    return pa.Table.from_pandas(frame, preserve_index=False)


_WORKER_MODELS: dict[str, Any] = {}


def _score_remote(settings: Any, model_ref: str, batch: Any, proba: bool) -> Any:
    """A Ray task: load the model once per worker process, then score the chunk."""
    model = _WORKER_MODELS.get(model_ref)
    if model is None:
        client = ambient.client_for(settings)
        model = _WORKER_MODELS[model_ref] = client.models.load(model_ref)
    return score_chunk(model, batch, proba)


def _ray_cpus() -> int:
    """The CPUs of the Ray cluster (``RAY_ADDRESS``'s, else a local instance it starts)."""
    ray = connect_ray("executor='ray'")
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _on_ray(settings: Any, model_ref: str, batches: Any, proba: bool, cpus: int) -> Any:
    """Score chunks as Ray tasks, at most two per CPU in flight, yielding results in order."""
    from collections import deque

    import ray

    task = ray.remote(_score_remote)
    window = max(2, cpus * 2)
    pending: deque[Any] = deque()
    for batch in batches:
        pending.append(task.remote(settings, model_ref, batch, proba))
        if len(pending) >= window:
            yield ray.get(pending.popleft())
    while pending:
        yield ray.get(pending.popleft())
