"""Run artifacts: a run's manifest of path → blob, over the content-addressed blob store.

Bytes go to the blob store first (once per distinct content, whoever uploads them); attaching
them to a run is then a metadata write of (path, digest, size). Logging the same path again
while the run is RUNNING replaces the entry; the old blob stays for anyone else using it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.timeutil import now_ms
from opsloop.store.blobs import BlobStore
from opsloop.store.blobs import check_digest
from opsloop.store.database import dialect_insert
from opsloop.tracking.entities import Artifact
from opsloop.tracking.entities import ArtifactSpec
from opsloop.tracking.runs import require_run_id
from opsloop.tracking.runs import require_writable_run
from opsloop.tracking.tables import ArtifactRow
from opsloop.tracking.validation import check_artifact_path

__all__ = ["get_artifact", "list_artifacts", "register_artifacts"]


def register_artifacts(
    session: Session, blobs: BlobStore, run_id: str, specs: Sequence[ArtifactSpec]
) -> list[Artifact]:
    """Attach stored blobs to a RUNNING run under the given paths.

    Raises:
        InvalidInput: A path escapes the run folder, a digest is malformed or not uploaded.
        Conflict: The run is finished or deleted.
        NotFound: The run does not exist.
    """
    run_id = require_writable_run(session, run_id, "artifacts")
    clean: dict[str, ArtifactSpec] = {}
    for spec in specs:
        path = check_artifact_path(spec.path)
        check_digest(spec.digest)
        clean[path] = spec
    missing = blobs.missing(spec.digest for spec in clean.values())
    if missing:
        raise InvalidInput(
            f"{len(missing)} blob(s) are not in the blob store; upload them first: {missing[:3]}",
            details={"missing": missing},
        )
    now = now_ms()
    rows = [
        {
            "run_id": run_id,
            "path": path,
            "digest": spec.digest,
            "size": spec.size,
            "created_at": now,
        }
        for path, spec in clean.items()
    ]
    if rows:
        stmt = dialect_insert(session, ArtifactRow.__table__)
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "path"],
            set_={"digest": stmt.excluded.digest, "size": stmt.excluded.size, "created_at": now},
        )
        session.execute(stmt, rows)
    return [
        Artifact(path=r["path"], digest=r["digest"], size=r["size"], created_at=now) for r in rows
    ]


def list_artifacts(session: Session, run_id: str, prefix: str | None = None) -> list[Artifact]:
    """Every artifact of a run (under ``prefix`` when given), sorted by path."""
    run_id = require_run_id(session, run_id)
    query = select(ArtifactRow).where(ArtifactRow.run_id == run_id).order_by(ArtifactRow.path)
    if prefix:
        folder = check_artifact_path(prefix)
        query = query.where(
            (ArtifactRow.path == folder) | ArtifactRow.path.startswith(folder + "/")
        )
    return [
        Artifact(path=r.path, digest=r.digest, size=r.size, created_at=r.created_at)
        for r in session.scalars(query)
    ]


def get_artifact(session: Session, run_id: str, path: str) -> Artifact:
    """One artifact by path. Raises ``NotFound``."""
    run_id = require_run_id(session, run_id)
    row = session.get(ArtifactRow, (run_id, check_artifact_path(path)))
    if row is None:
        raise NotFound(f"run {run_id} has no artifact {path!r}")
    return Artifact(path=row.path, digest=row.digest, size=row.size, created_at=row.created_at)
