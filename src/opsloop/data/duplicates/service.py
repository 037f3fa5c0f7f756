"""Deduplication and overlap of dataset versions, where the blobs are.

This runs in-process for the embedded store and on the server for a shared one, over a
``Store`` and a ``BlobStore`` rather than a session: reading and hashing take seconds, so they
run between a short read transaction and a short write one. The kept rows (their repeated
spans cut, with ``substring``) become the next version of the dataset (or of ``name``), in
the source's format, with a ``deduplicated``
lineage edge from the source. The report is a JSON blob named by the version's tag
``opsloop.dedup.report`` (a version is one table file, so the report cannot sit beside it in
the version without making it a folder; the blob store keeps it content-addressed and the
tag keeps it one lookup away).
"""

from __future__ import annotations

import functools
import json
import tempfile
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from typing import TypeVar

import numpy as np

from opsloop.data import versions
from opsloop.data.duplicates.engine import NearParams
from opsloop.data.duplicates.engine import contamination
from opsloop.data.duplicates.engine import deduplicate
from opsloop.data.duplicates.entities import DedupRequest
from opsloop.data.duplicates.entities import DedupResult
from opsloop.data.duplicates.entities import ExecutorOptions
from opsloop.data.duplicates.entities import OverlapRequest
from opsloop.data.duplicates.ports import Embedder
from opsloop.data.duplicates.rows import TableScan
from opsloop.data.duplicates.rows import write_kept
from opsloop.data.duplicates.semantic import SemanticParams
from opsloop.data.duplicates.substring import SubstringParams
from opsloop.data.duplicates.substring import add_cut
from opsloop.data.duplicates.substring import cut_repeats
from opsloop.data.entities import DatasetVersion
from opsloop.data.tabular import describe_table
from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import UpstreamFailed
from opsloop.kernel.ray_cluster import connect_ray
from opsloop.kernel.refs import check_dataset_name
from opsloop.lineage import graph
from opsloop.store.blobs import BlobStore
from opsloop.store.database import Store

__all__ = ["REPORT_TAG", "dedup_report", "dedup_version", "overlap_versions"]

REPORT_TAG = "opsloop.dedup.report"
RELATION = "deduplicated"
EXECUTORS = ("local", "ray")
T = TypeVar("T")


def _near(options: Any, on: bool) -> NearParams | None:
    if not on:
        return None
    return NearParams(options.threshold, options.ngram, options.num_perm, options.verify).check()


def _read(
    store: Store, blobs: BlobStore, ref: str, folder: Path
) -> tuple[DatasetVersion, TableScan]:
    """The version and a scan of its table, copied from the blob store into ``folder``."""
    with store.read() as session:
        version, manifest = versions.get_manifest(session, ref)
    if version.table is None:
        raise InvalidInput(f"{version.ref} is not a table (CSV, Parquet or JSON lines)")
    missing = blobs.missing([e.digest for e in manifest.entries])
    if missing:
        raise Conflict(
            f"{len(missing)} file(s) of {version.ref} are not in the blob store {blobs.url}; "
            f"push them first (opsloop data push {version.ref})"
        )
    files = []
    for entry in manifest.entries:
        target = folder.joinpath(*entry.path.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        blobs.get_file(entry.digest, target)
        files.append(str(target))
    return version, TableScan(files, version.table.format, version.ref)


def dedup_version(
    store: Store,
    blobs: BlobStore,
    request: DedupRequest,
    created_by: str,
    on_rows: Callable[[int], None] | None = None,
    embedder: Embedder | None = None,
) -> DedupResult:
    """Deduplicate ``request.ref`` (see the module); no new version when nothing is removed.
    ``request.semantic`` needs ``embedder`` (``InvalidInput`` saying what to install). The
    row methods (exact, near, semantic) run first; ``request.substring`` then cuts repeated
    spans from the rows they keep (:mod:`.substring`), on this machine even after Ray."""
    near = _near(request, request.near)
    semantic = SemanticParams(request.eps).check() if request.semantic else None
    substring = SubstringParams(request.min_length).check() if request.substring else None
    rows_too = request.exact or near is not None or semantic is not None
    if not rows_too and substring is None:
        raise InvalidInput("choose a method: exact, near, semantic, substring, or several")
    unsupported = semantic is not None or near is None
    _check_executor(request, "dedup", unsupported, "drop --semantic, keep --near")
    if request.name is not None:
        check_dataset_name(request.name)
    with tempfile.TemporaryDirectory(prefix="opsloop-dedup-") as tmp:
        source, table = _read(store, blobs, request.ref, Path(tmp) / "in")
        texts = table.text_column(request.column)
        scores = table.scores(request.score_column) if request.score_column else None
        found: dict[str, Any] | None = None
        keep = np.ones(len(texts), dtype=bool)
        if request.executor == "ray":
            keep, found = _dedup_on_ray(texts, request, near, scores)
        elif rows_too:
            keep, found = deduplicate(
                texts, exact=request.exact, near=near, semantic=semantic, embedder=embedder,
                keep=request.keep, scores=scores, on_rows=on_rows,
            )  # fmt: skip
        edit = None
        if substring is not None:
            column = (batch.column(0) for batch in table.batches([request.column]))
            cut = cut_repeats(column, keep, substring, f"column {request.column!r} of {source.ref}")
            keep, found = add_cut(found, keep, cut, request.keep)
            if cut.report["rows_changed"]:
                edit = functools.partial(cut.apply, column=request.column)
        assert found is not None  # a method ran: checked above
        report = {"source": source.ref, "column": request.column, **found}
        report["executor"] = request.executor
        if keep.all() and edit is None:
            return DedupResult(source=source.ref, report=report)
        fmt = table.fmt
        with store.read() as session:
            _, manifest = versions.get_manifest(session, source.ref)
        name = manifest.entries[0].path if len(manifest) == 1 else "part-0.parquet"
        out = Path(tmp) / "out" / Path(name).name
        out.parent.mkdir()
        write_kept(table, keep, out, edit)
        digest = blobs.put_file(out)
        info = describe_table([str(out)], fmt)
        size = out.stat().st_size
    report_digest = blobs.put_bytes(json.dumps(report).encode())
    removed = report["rows"] - report["rows_kept"]
    spans = report["substring"]["spans_removed"] if substring is not None else 0
    what = f"{removed:,} duplicate rows" + (f" and {spans:,} repeated spans" if spans else "")
    with store.write() as session:
        version, created = versions.create_version(
            session,
            request.name or source.name,
            versions.manifest_from_rows([(Path(name).name, digest, size)]),
            kind="table",
            created_by=created_by,
            message=request.message or f"{source.ref} without {what}",
            source=f"opsloop data dedup {source.ref}",
            table=info,
            tags={REPORT_TAG: report_digest, "opsloop.dedup.source": source.ref},
        )
        graph.add_edge(
            session,
            (graph.DATASET_VERSION, versions.version_node_id(session, source.ref)),
            (graph.DATASET_VERSION, versions.version_node_id(session, version.ref)),
            RELATION,
        )
    return DedupResult(source=source.ref, version=version, created=created, report=report)


def _check_executor(request: ExecutorOptions, what: str, unsupported: bool, fix: str) -> None:
    """Refuse a bad executor, and on Ray what it does not run (``fix`` says what to change)
    or a partition count below one, before Ray starts (seconds)."""
    if request.executor not in EXECUTORS:
        raise InvalidInput(f"executor must be local or ray, not {request.executor!r}")
    if request.executor == "ray" and unsupported:
        raise InvalidInput(f"on Ray, {what} runs exact and near search: {fix}")
    if request.partitions is not None and request.partitions < 1:
        raise InvalidInput(f"partitions must be between 1 and the rows, not {request.partitions}")


def _on_ray(what: str, rows: int, partitions: int | None, work: Callable[..., T]) -> T:
    """``work(ray, partitions)`` with Ray connected (:mod:`.on_ray`), ``partitions``
    defaulting to one per cluster CPU for ``rows``; Ray's failures as ``UpstreamFailed``."""
    from opsloop.data.duplicates import on_ray  # Ray: only when asked

    ray = connect_ray(f"{what} --executor ray")
    try:
        if partitions is None:
            partitions = on_ray.partitions_for(ray, rows)
        return work(ray, partitions)
    except ray.exceptions.RayError as exc:  # a worker lost, the object store full, ...
        last = [line for line in str(exc).splitlines() if line.strip()][-1:] or [""]
        raise UpstreamFailed(f"{what} on Ray failed: {type(exc).__name__}: {last[0]}") from exc


def _dedup_on_ray(
    texts: Sequence[str | None], request: DedupRequest, near: NearParams | None, scores: Any
) -> tuple[Any, dict[str, Any]]:
    """``deduplicate`` as Ray tasks (:mod:`.on_ray`), on ``request.partitions`` parts."""
    from opsloop.data.duplicates.on_ray import deduplicate_on_ray

    def work(ray: Any, partitions: int) -> tuple[Any, dict[str, Any]]:
        return deduplicate_on_ray(
            ray, texts, partitions=partitions, exact=request.exact, near=near,
            keep=request.keep, scores=scores,
        )  # fmt: skip

    return _on_ray("dedup", len(texts), request.partitions, work)


def dedup_report(store: Store, blobs: BlobStore, ref: str) -> dict[str, Any]:
    """The report stored with a version ``opsloop data dedup`` made; ``NotFound`` for any
    other version."""
    with store.read() as session:
        version = versions.get_version(session, ref)
    digest = version.tags.get(REPORT_TAG)
    if digest is None:
        raise NotFound(f"{version.ref} was not made by opsloop data dedup: it has no report")
    report: dict[str, Any] = json.loads(blobs.read_bytes(digest))
    return {**report, "output": version.ref}


def overlap_versions(store: Store, blobs: BlobStore, request: OverlapRequest) -> dict[str, Any]:
    """Contamination of ``request.eval`` by ``request.train`` (see ``engine.contamination``;
    the same report from Ray tasks with ``executor="ray"``: :func:`.on_ray.overlap_on_ray`),
    with ``passed`` and an expectation-shaped check when ``max_rate`` is given."""
    near = _near(request, request.near)
    if request.max_rate is not None and not 0 <= request.max_rate <= 1:
        raise InvalidInput(f"max_rate must be in [0, 1], not {request.max_rate}")
    _check_executor(request, "overlap", near is None, "keep near")
    with tempfile.TemporaryDirectory(prefix="opsloop-overlap-") as tmp:
        train, train_table = _read(store, blobs, request.train, Path(tmp) / "train")
        train_texts = train_table.text_column(request.column)
        evaluation, eval_table = _read(store, blobs, request.eval, Path(tmp) / "eval")
        eval_texts = eval_table.text_column(request.eval_column or request.column)
        if request.executor == "ray":
            report = _overlap_on_ray(train_texts, eval_texts, request, near)
        else:
            report = contamination(train_texts, eval_texts, exact=request.exact, near=near)
    report = {"train": train.ref, "eval": evaluation.ref, **report, "max_rate": request.max_rate}
    report["executor"] = request.executor
    passed = request.max_rate is None or report["rate"] <= request.max_rate
    limit = f" (limit {request.max_rate:.2%})" if request.max_rate is not None else ""
    report["passed"] = passed
    counted = report["eval_rows"] - report["empty_eval_rows"]
    report["checks"] = [
        {
            "check": "overlap",
            "passed": passed,
            "message": f"{report['contaminated']:,} of {counted:,} non-empty rows of "
            f"{evaluation.ref} ({report['rate']:.2%}) have a duplicate in {train.ref}{limit}",
        }
    ]
    return report


def _overlap_on_ray(
    train: Sequence[str | None],
    evaluation: Sequence[str | None],
    request: OverlapRequest,
    near: NearParams | None,
) -> dict[str, Any]:
    """``contamination`` as Ray tasks (:mod:`.on_ray`), on ``request.partitions`` parts."""
    from opsloop.data.duplicates.on_ray import overlap_on_ray

    def work(ray: Any, partitions: int) -> dict[str, Any]:
        return overlap_on_ray(
            ray, train, evaluation, partitions=partitions, exact=request.exact, near=near
        )

    return _on_ray("overlap", len(train) + len(evaluation), request.partitions, work)
