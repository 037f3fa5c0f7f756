"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/artifacts/...``) over opsloop's blobs.

A run's ``artifact_uri`` is ``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts``
(:mod:`.mlflow_protocol`), so MLflow's client sends a file as ``PUT .../artifacts/<experiment_id>
/<run_id>/artifacts/<path>``, lists a folder with ``GET .../artifacts?path=...`` and reads a file
with ``GET .../artifacts/<...>/<path>``. An upload is streamed to disk (never held whole), put in
the content-addressed blob store and attached to the run as opsloop's own uploads are
(:func:`.artifacts.register_artifacts`), so it shows in the run's artifacts like any other.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi import Query
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from opsloop.errors import Conflict
from opsloop.errors import NotFound
from opsloop.kernel.routes import Route
from opsloop.tracking import artifacts
from opsloop.tracking import runs
from opsloop.tracking.api import blob_response
from opsloop.tracking.entities import ArtifactSpec
from opsloop.tracking.validation import check_artifact_path
from opsloop.web.deps import Blobs
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State
from opsloop.web.limits import BodyLimit
from opsloop.web.mlflow import ARTIFACT_PREFIXES
from opsloop.web.mlflow import answered_as

__all__ = ["BODY_LIMITS", "list_run_artifacts", "proxy_router"]

proxy_router = APIRouter(tags=["mlflow"])
_ARTIFACT = "/artifacts/{path:path}"
# An upload is streamed to disk, so it has no body limit (as opsloop's own blob upload).
BODY_LIMITS = [
    BodyLimit("PUT", Route(_ARTIFACT, mount=prefix), None) for prefix in ARTIFACT_PREFIXES
]


def _run_path(session: Any, path: str) -> tuple[str, str]:
    """The run id and the path inside the run of ``<experiment_id>/<run_id>/artifacts[/...]``."""
    parts = path.strip("/").split("/", 3)
    if len(parts) < 3 or parts[2] != "artifacts":
        raise NotFound(
            f"no run artifacts at {path!r}: expected <experiment_id>/<run_id>/artifacts/<path>"
        )
    run = runs.require_run(session, parts[1])
    if run.experiment_id != parts[0]:
        raise NotFound(f"run {run.id} is not in experiment {parts[0]!r}")
    inside = parts[3] if len(parts) == 4 else ""
    return run.id, check_artifact_path(inside) if inside else ""


def list_run_artifacts(session: Any, run_id: str, folder: str) -> list[dict[str, Any]]:
    """The files and folders directly in ``folder`` of a run (``""``: its root), by path
    relative to the run, as MLflow's ``FileInfo`` (a file listed as itself has none)."""
    entries: dict[str, dict[str, Any]] = {}
    base = folder + "/" if folder else ""
    for artifact in artifacts.list_artifacts(session, run_id, folder or None):
        rest = artifact.path.removeprefix(base) if base else artifact.path
        if not rest or artifact.path == folder:
            continue
        name, slash, _ = rest.partition("/")
        if slash:
            entries.setdefault(name, {"path": base + name, "is_dir": True})
        else:
            entries[name] = {"path": base + name, "is_dir": False, "file_size": artifact.size}
    return [entries[name] for name in sorted(entries)]


@proxy_router.get("/artifacts")
def list_artifacts(session: ReadSession, path: str = Query("")) -> dict[str, Any]:
    """The entries of one folder, named relative to it (as MLflow's server does)."""
    run_id, folder = _run_path(session, path)
    files = list_run_artifacts(session, run_id, folder)
    for entry in files:
        entry["path"] = entry["path"].rsplit("/", 1)[-1]
    return {"files": files}


@proxy_router.get(_ARTIFACT)
def download_artifact(path: str, session: ReadSession, blobs: Blobs):  # type: ignore[no-untyped-def]
    run_id, inside = _run_path(session, path)
    artifact = artifacts.get_artifact(session, run_id, inside)
    return blob_response(blobs, artifact.digest, Path(artifact.path).name)


@proxy_router.put(_ARTIFACT)
async def upload_artifact(path: str, request: Request, state: State) -> dict[str, Any]:
    """Store the body as the run's artifact at ``path`` (replacing what was there)."""
    run_id, inside = await run_in_threadpool(_resolve, state, path)
    if not inside:
        raise NotFound(f"{path!r} names the run's artifact folder, not a file in it")
    fd, name = tempfile.mkstemp(prefix="opsloop-mlflow-upload-")
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
                size += len(chunk)
        digest = await run_in_threadpool(state.blobs.put_file, name)
    finally:
        Path(name).unlink(missing_ok=True)
    await run_in_threadpool(
        _register, state, run_id, ArtifactSpec(path=inside, digest=digest, size=size)
    )
    return {}


def _resolve(state: Any, path: str) -> tuple[str, str]:
    with state.store.read() as session:
        return _run_path(session, path)


def _register(state: Any, run_id: str, spec: ArtifactSpec) -> None:
    with state.store.write() as session, answered_as("INVALID_PARAMETER_VALUE", Conflict):
        artifacts.register_artifacts(session, state.blobs, run_id, [spec])  # RUNNING runs only
