"""Tracking's REST routes under ``/api``: experiments, runs, metrics, artifacts, blobs.

Thin by design: each route parses its request, calls one service function inside the session
its dependency opened (and commits), and returns an entity. No logic lives here.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from fastapi import APIRouter
from fastapi import Query
from fastapi import Request
from fastapi import status
from fastapi.responses import FileResponse
from fastapi.responses import Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from opsloop.errors import InvalidInput
from opsloop.kernel.bounds import Int64
from opsloop.kernel.identity import current_principal
from opsloop.kernel.paging import Page
from opsloop.store import blob_routes
from opsloop.store.blobs import check_digest
from opsloop.store.local_blobs import LocalBlobStore
from opsloop.store.packs import BATCH_MAX_BYTES
from opsloop.store.packs import frame
from opsloop.store.packs import unframe
from opsloop.tracking import artifacts
from opsloop.tracking import experiments
from opsloop.tracking import routes
from opsloop.tracking import run_data
from opsloop.tracking import runs
from opsloop.tracking import search
from opsloop.tracking.entities import Artifact
from opsloop.tracking.entities import Experiment
from opsloop.tracking.entities import MetricHistory
from opsloop.tracking.entities import Run
from opsloop.tracking.entities import RunInfo
from opsloop.tracking.schemas import ArtifactsRegister
from opsloop.tracking.schemas import BlobDigests
from opsloop.tracking.schemas import ExperimentCreate
from opsloop.tracking.schemas import ExperimentUpdate
from opsloop.tracking.schemas import LogBatch
from opsloop.tracking.schemas import LogBatchResult
from opsloop.tracking.schemas import RunCreate
from opsloop.tracking.schemas import RunUpdate
from opsloop.tracking.schemas import SearchRuns
from opsloop.tracking.schemas import TagValue
from opsloop.web.deps import Blobs
from opsloop.web.deps import ReadSession
from opsloop.web.deps import WriteSession
from opsloop.web.limits import BodyLimit

router = APIRouter()
# Bodies larger than the default JSON limit: a framed blob batch, and a single blob upload,
# which is streamed to disk and never held whole (so it has no limit).
BODY_LIMITS = [
    BodyLimit("POST", blob_routes.BLOBS_BATCH, BATCH_MAX_BYTES),
    BodyLimit("PUT", blob_routes.BLOB, None),
]
_EXPERIMENTS = "experiments"
_RUNS = "runs"
_ARTIFACTS = "artifacts"


# -- experiments ---------------------------------------------------------------------------------
@router.post(routes.EXPERIMENTS.template, status_code=status.HTTP_201_CREATED, tags=[_EXPERIMENTS])
def create_experiment(body: ExperimentCreate, session: WriteSession) -> Experiment:
    return experiments.create_experiment(
        session, body.name, description=body.description, tags=body.tags
    )


@router.get(routes.EXPERIMENTS.template, tags=[_EXPERIMENTS])
def list_experiments(
    session: ReadSession,
    view: str = "active",
    max_results: int = Query(1000, ge=1, le=50_000),
    page_token: str | None = None,
) -> Page[Experiment]:
    return experiments.list_experiments(
        session, view=view, max_results=max_results, page_token=page_token
    )


@router.get(routes.EXPERIMENT_BY_NAME.template, tags=[_EXPERIMENTS])
def get_experiment_by_name(name: str, session: ReadSession) -> Experiment:
    return experiments.get_experiment_by_name(session, name)


@router.put(routes.EXPERIMENT_BY_NAME.template, tags=[_EXPERIMENTS])
def get_or_create_experiment(name: str, session: WriteSession) -> Experiment:
    """The experiment with this name, created when missing (idempotent)."""
    return experiments.get_or_create_experiment(session, name)


@router.get(routes.EXPERIMENT.template, tags=[_EXPERIMENTS])
def get_experiment(experiment_id: str, session: ReadSession) -> Experiment:
    return experiments.get_experiment(session, experiment_id)


@router.patch(routes.EXPERIMENT.template, tags=[_EXPERIMENTS])
def update_experiment(
    experiment_id: str, body: ExperimentUpdate, session: WriteSession
) -> Experiment:
    return experiments.update_experiment(
        session, experiment_id, name=body.name, description=body.description
    )


@router.delete(routes.EXPERIMENT.template, tags=[_EXPERIMENTS])
def delete_experiment(experiment_id: str, session: WriteSession) -> Experiment:
    return experiments.delete_experiment(session, experiment_id)


@router.post(routes.EXPERIMENT_RESTORE.template, tags=[_EXPERIMENTS])
def restore_experiment(experiment_id: str, session: WriteSession) -> Experiment:
    return experiments.restore_experiment(session, experiment_id)


@router.put(routes.EXPERIMENT_TAG.template, tags=[_EXPERIMENTS])
def set_experiment_tag(experiment_id: str, key: str, body: TagValue, session: WriteSession) -> None:
    experiments.set_experiment_tag(session, experiment_id, key, body.value)


# -- runs ----------------------------------------------------------------------------------------
@router.post(routes.RUNS.template, status_code=status.HTTP_201_CREATED, tags=[_RUNS])
def create_run(body: RunCreate, session: WriteSession) -> Run:
    """A server with users records the caller it authenticated as the run's author, never a
    ``user_id`` the body names; without users (one token, or none) there is no one to know
    but the client, whose word is kept as MLflow keeps it."""
    ignored = {"user_id"} if current_principal() is not None else set()
    return runs.create_run(session, **body.model_dump(exclude=ignored))


@router.post(routes.RUNS_SEARCH.template, tags=[_RUNS])
def search_runs(body: SearchRuns, session: ReadSession) -> Page[Run]:
    return search.search_runs(session, **dict(body))


@router.get(routes.RUN.template, tags=[_RUNS])
def get_run(run_id: str, session: ReadSession) -> Run:
    return runs.get_run(session, run_id)


@router.patch(routes.RUN.template, tags=[_RUNS])
def update_run(run_id: str, body: RunUpdate, session: WriteSession) -> RunInfo:
    return runs.update_run(session, run_id, **body.model_dump(exclude_none=True))


@router.delete(routes.RUN.template, tags=[_RUNS])
def delete_run(run_id: str, session: WriteSession) -> RunInfo:
    return runs.delete_run(session, run_id)


@router.post(routes.RUN_RESTORE.template, tags=[_RUNS])
def restore_run(run_id: str, session: WriteSession) -> RunInfo:
    return runs.restore_run(session, run_id)


@router.post(routes.RUN_BATCH.template, tags=[_RUNS])
def log_batch(run_id: str, body: LogBatch, session: WriteSession) -> LogBatchResult:
    """Log metrics (columnar, grouped by key), params and tags in one transaction."""
    return LogBatchResult(metrics_logged=run_data.log_batch(session, run_id, **dict(body)))


@router.delete(routes.RUN_TAG.template, tags=[_RUNS])
def delete_tag(run_id: str, key: str, session: WriteSession) -> None:
    run_data.delete_tag(session, run_id, key)


@router.get(routes.RUN_METRICS.template, tags=[_RUNS])
def list_metric_keys(run_id: str, session: ReadSession) -> list[str]:
    return run_data.list_metric_keys(session, run_id)


@router.get(routes.RUN_METRIC_HISTORY.template, tags=[_RUNS])
def get_metric_history(
    run_id: str, key: str, session: ReadSession, max_points: Int64 | None = None
) -> MetricHistory:
    """Every point of one metric; ``max_points`` thins it for plotting (min/max per bucket)."""
    return run_data.get_metric_history(session, run_id, key, max_points)


# -- artifacts and blobs -----------------------------------------------------------------------
@router.get(routes.RUN_ARTIFACTS.template, tags=[_ARTIFACTS])
def list_artifacts(run_id: str, session: ReadSession, prefix: str | None = None) -> list[Artifact]:
    return artifacts.list_artifacts(session, run_id, prefix)


@router.post(routes.RUN_ARTIFACTS.template, tags=[_ARTIFACTS])
def register_artifacts(
    run_id: str, body: ArtifactsRegister, session: WriteSession, blobs: Blobs
) -> list[Artifact]:
    """Attach uploaded blobs to the run under the given paths."""
    return artifacts.register_artifacts(session, blobs, run_id, body.artifacts)


@router.get(routes.RUN_ARTIFACT_CONTENT.template, tags=[_ARTIFACTS])
def get_artifact_content(run_id: str, path: str, session: ReadSession, blobs: Blobs):  # type: ignore[no-untyped-def]
    """The bytes of one artifact."""
    artifact = artifacts.get_artifact(session, run_id, path)
    return blob_response(blobs, artifact.digest, Path(artifact.path).name)


@router.post(blob_routes.BLOBS_MISSING.template, tags=[_ARTIFACTS])
def missing_blobs(body: BlobDigests, blobs: Blobs) -> BlobDigests:
    """Which of these digests the blob store lacks (upload only those)."""
    return BlobDigests(digests=blobs.missing(check_digest(d) for d in body.digests))


@router.put(blob_routes.BLOB.template, status_code=status.HTTP_201_CREATED, tags=[_ARTIFACTS])
async def upload_blob(digest: str, request: Request, blobs: Blobs) -> BlobDigests:
    """Upload a blob's raw bytes; they are hashed and refused unless they match ``digest``."""
    check_digest(digest)
    fd, name = tempfile.mkstemp(prefix="opsloop-upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
        await run_in_threadpool(blobs.put_file, name, digest)
    finally:
        Path(name).unlink(missing_ok=True)
    return BlobDigests(digests=[digest])


@router.post(
    blob_routes.BLOBS_BATCH.template, status_code=status.HTTP_201_CREATED, tags=[_ARTIFACTS]
)
async def upload_blob_batch(request: Request, blobs: Blobs) -> BlobDigests:
    """Upload many small blobs in one body, ``<index JSON>\\n<bytes>`` (a framed pack, see
    ``opsloop.store.packs``), at most 256 MiB. Every blob is hashed first; the batch is
    refused whole, storing nothing, unless each one matches its digest."""
    raw = bytearray()
    async for chunk in request.stream():  # at most BATCH_MAX_BYTES: BODY_LIMITS refuses more
        raw += chunk
    pairs = await run_in_threadpool(_verified_batch, bytes(raw))
    await run_in_threadpool(blobs.put_verified_bytes, pairs)
    return BlobDigests(digests=[digest for digest, _ in pairs])


@router.post(blob_routes.BLOBS_BATCH_DOWNLOAD.template, tags=[_ARTIFACTS])
def download_blob_batch(body: BlobDigests, blobs: Blobs) -> Response:
    """Many blobs in one response body, framed like a batch upload, at most 256 MiB in all
    (ask for fewer beyond that). An unknown digest fails the request with a 404. The store
    reads them as it reads best (an object store: a few ranged reads per pack)."""
    pairs = blobs.read_many([check_digest(d) for d in body.digests], BATCH_MAX_BYTES)
    return Response(frame(pairs), media_type="application/octet-stream")


def _verified_batch(raw: bytes) -> list[tuple[str, memoryview]]:
    from blake3 import blake3

    try:
        pairs = unframe(raw)
    except ValueError as exc:
        raise InvalidInput(f"batch upload: {exc}") from None
    for digest, data in pairs:
        actual = blake3(data).hexdigest()
        if actual != check_digest(digest):
            raise InvalidInput(
                f"batch upload: blob {digest} does not match its digest (its bytes hash to "
                f"{actual}); nothing in the batch was stored"
            )
    return pairs


@router.get(blob_routes.BLOB.template, tags=[_ARTIFACTS])
def download_blob(digest: str, blobs: Blobs):  # type: ignore[no-untyped-def]
    """A blob's bytes."""
    return blob_response(blobs, check_digest(digest), digest)


def blob_response(blobs: Blobs, digest: str, filename: str):  # type: ignore[no-untyped-def]
    """A blob's bytes as a download (served from disk by a local store, else streamed)."""
    if isinstance(blobs, LocalBlobStore):
        path = blobs.path_of(digest)
        if path.is_file():
            return FileResponse(path, filename=filename, media_type="application/octet-stream")
    handle = blobs.open(digest)
    return StreamingResponse(
        iter(lambda: handle.read(1 << 20), b""),
        media_type="application/octet-stream",
        background=BackgroundTask(handle.close),
    )
