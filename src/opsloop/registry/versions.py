"""Registry services: immutable model versions — registering one from a package in the blob
store (the registry trusts the package's ``opsloop-model.json`` it read there, not what a client
said; a version made from a run must come from a run that finished), reading, listing,
describing, tagging and deleting them.

Every function takes an open session and never commits. Models and the lookups shared with
aliases and serving are :mod:`opsloop.registry.models`.
"""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.data.manifest import Manifest
from opsloop.data.versions import manifest_from_rows
from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.paging import Page
from opsloop.kernel.paging import decode_page_token
from opsloop.kernel.refs import check_name
from opsloop.kernel.step_context import STEP_RUN_TAG
from opsloop.kernel.timeutil import now_ms
from opsloop.lineage import graph
from opsloop.registry.entities import ModelVersion
from opsloop.registry.entities import version_from_row
from opsloop.registry.models import _NOUN
from opsloop.registry.models import MODEL_VERSION
from opsloop.registry.models import NUMBERING
from opsloop.registry.models import ensure_model
from opsloop.registry.models import find_version
from opsloop.registry.models import model_row
from opsloop.registry.models import refuse_if_served
from opsloop.registry.models import resolve_version_row
from opsloop.registry.models import version_entity
from opsloop.registry.package import META_FILE
from opsloop.registry.package import PackageMeta
from opsloop.registry.tables import ModelVersionRow
from opsloop.registry.tables import ModelVersionTagRow
from opsloop.registry.tables import RegisteredModelRow
from opsloop.store.blobs import BlobStore
from opsloop.store.columns import delete_tag_row
from opsloop.store.numbered import aliases_at
from opsloop.store.numbered import lineage_label
from opsloop.store.numbered import newest_versions
from opsloop.tracking.entities import RunStatus
from opsloop.tracking.tables import ArtifactRow
from opsloop.tracking.tables import RunRow
from opsloop.tracking.validation import check_artifact_path
from opsloop.tracking.validation import clean_tag
from opsloop.tracking.validation import clean_tags

__all__ = [
    "create_version",
    "delete_version",
    "delete_version_tag",
    "get_version",
    "list_versions",
    "manifest_of",
    "run_manifest_rows",
    "set_version_tag",
    "update_version",
    "version_lineage_label",
    "version_node_id",
]

_MODELS = RegisteredModelRow.__table__
_VERSIONS = ModelVersionRow.__table__
_VERSION_TAGS = ModelVersionTagRow.__table__
_RUNS = RunRow.__table__
_ARTIFACTS = ArtifactRow.__table__
_RUN_STATUS = select(_RUNS.c.status).where(_RUNS.c.id == bindparam("run_id"))
# A folder's artifacts: the path itself, or the range [folder + "/", folder + "0") ("0" sorts
# right after "/"), which an index serves exactly, whatever characters the path holds.
_RUN_ARTIFACTS = (
    select(_ARTIFACTS.c.path, _ARTIFACTS.c.digest, _ARTIFACTS.c.size)
    .where(
        _ARTIFACTS.c.run_id == bindparam("run_id"),
        (_ARTIFACTS.c.path == bindparam("folder"))
        | ((_ARTIFACTS.c.path >= bindparam("low")) & (_ARTIFACTS.c.path < bindparam("high"))),
    )
    .order_by(_ARTIFACTS.c.path)
)
_PACKAGE_META = (
    select(_VERSIONS.c.package).where(_VERSIONS.c.package_id == bindparam("package_id")).limit(1)
)
# What registering needs to know, in one round trip: the model's id, its highest version
# number (one index seek on (model_id, number)) and the source run's status.
_MODEL_ID = select(_MODELS.c.id).where(_MODELS.c.name == bindparam("name")).scalar_subquery()
_REGISTRATION_FACTS = select(
    _MODEL_ID,
    select(func.max(_VERSIONS.c.number)).where(_VERSIONS.c.model_id == _MODEL_ID).scalar_subquery(),
    select(_RUNS.c.status).where(_RUNS.c.id == bindparam("run_id")).scalar_subquery(),
)


# -- versions -------------------------------------------------------------------------------------
def _require_finished(session: Session, run_id: str) -> None:
    from opsloop.tracking.validation import check_run_id

    found = session.connection().scalar(_RUN_STATUS, {"run_id": check_run_id(run_id)})
    _check_finished(run_id, found)


def _check_finished(run_id: str, found: str | None) -> None:
    if found is None:
        raise NotFound(f"run {run_id} does not exist")
    status = RunStatus(found)
    if status is not RunStatus.FINISHED:
        what = "is still running; end it first" if not status.is_terminal else f"ended {status}"
        raise Conflict(
            f"run {run_id} {what}: only a FINISHED run's model can be registered",
            details={"status": status.value},
        )


def run_manifest_rows(session: Session, run_id: str, path: str) -> list[tuple[str, str, int]]:
    """The run's artifacts under ``path`` as package rows (paths relative to that folder).

    Raises:
        NotFound: The run does not exist or has nothing under ``path``.
    """
    folder = check_artifact_path(path)
    params = {"run_id": run_id, "folder": folder, "low": folder + "/", "high": folder + "0"}
    rows = session.connection().execute(_RUN_ARTIFACTS, params).all()
    if not rows:
        _require_finished(session, run_id)  # an unknown or unfinished run says so first
        raise NotFound(f"run {run_id} has no artifacts under {folder!r}")
    if len(rows) == 1 and rows[0].path == folder:
        return [(folder.rsplit("/", 1)[-1], rows[0].digest, rows[0].size)]
    return [(r.path[len(folder) + 1 :], r.digest, r.size) for r in rows]


def _known_package(session: Session, package_id: str) -> PackageMeta | None:
    """The metadata of a package some version already holds: its files were checked then, and
    content addressing means the same id is the same bytes (registering a logged model again
    is the common case)."""
    stored = session.connection().scalar(_PACKAGE_META, {"package_id": package_id})
    return PackageMeta.model_validate_json(stored) if stored is not None else None


def _read_package(blobs: BlobStore, manifest: Manifest) -> PackageMeta:
    """Check the package's files are all uploaded, then read and check its metadata."""
    missing = blobs.missing(e.digest for e in manifest.entries)
    if missing:
        raise InvalidInput(
            f"{len(missing)} package file(s) are not in the blob store; upload them first",
            details={"missing": missing},
        )
    entry = manifest.by_path.get(META_FILE)
    if entry is None:
        raise InvalidInput(
            f"the files are not an opsloop model package: no {META_FILE} among "
            f"{[e.path for e in manifest.entries[:5]]}; log models with opsloop.log_model"
        )
    meta = PackageMeta.parse(blobs.read_bytes(entry.digest))
    inside = meta.model_file + "/"
    if meta.model_file not in manifest.by_path and not any(
        e.path.startswith(inside) for e in manifest.entries
    ):
        raise InvalidInput(f"the package names {meta.model_file!r} but does not contain it")
    return meta


def create_version(
    session: Session,
    blobs: BlobStore,
    name: str,
    files: list[tuple[str, str, int]],
    *,
    created_by: str,
    run_id: str | None = None,
    source: str | None = None,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
    card: dict[str, str] | None = None,
    live_run: bool = False,
) -> ModelVersion:
    """Register the package ``files`` (already in the blob store) as ``name``'s next version.

    The model is registered on first use. Raises ``InvalidInput`` for files that are not a
    package or not uploaded, ``Conflict`` for a run that has not finished (a step's run, named
    by the ``STEP_RUN_TAG`` tag of a model registered inside the step, may still be running;
    so may ``run_id`` with ``live_run``: MLflow's client registers a model logged inside an
    active run before the run ends).
    """
    check_name(name, _NOUN)
    manifest = manifest_from_rows(files)
    meta = _known_package(session, manifest.version_id) or _read_package(blobs, manifest)
    checked_tags = clean_tags(tags)
    # Registered inside a pipeline step, a live model names no run but carries the step's:
    # that run (RUNNING while its step runs) is the version's run, so lineage walks from the
    # version to the step, its pipeline run, the data they read and the commit.
    step_run = checked_tags.get(STEP_RUN_TAG) if run_id is None else None
    conn = session.connection()  # Core statements, not the ORM: registering is a hot path
    model_id, latest, run_status = conn.execute(
        _REGISTRATION_FACTS, {"name": name, "run_id": run_id or step_run}
    ).one()
    if run_id is not None and live_run:
        if run_status is None:
            raise NotFound(f"run {run_id} does not exist")
    elif run_id is not None:
        _check_finished(run_id, run_status)
    elif step_run is not None:
        if run_status is None:
            raise NotFound(f"step run {step_run} (tag {STEP_RUN_TAG}) does not exist")
        run_id = step_run
    if model_id is None:
        model_id = ensure_model(session, name, created_by).id
    number = (latest or 0) + 1
    now = now_ms()
    row = {
        "id": uuid.uuid4().hex,
        "model_id": model_id,
        "number": number,
        "package_id": manifest.version_id,
        "manifest": manifest.compressed(),
        "file_count": len(manifest),
        "total_bytes": manifest.total_bytes,
        "flavor": meta.flavor,
        "package": meta.model_dump_json(),
        "source": source,
        "run_id": run_id,
        "description": description,
        "card": json.dumps(card) if card else None,
        "created_at": now,
        "created_by": created_by,
    }
    conn.execute(_VERSIONS.insert(), row)
    if checked_tags:
        conn.execute(
            _VERSION_TAGS.insert(),
            [{"version_pk": row["id"], "key": k, "value": v} for k, v in checked_tags.items()],
        )
    if run_id is not None:
        graph.add_edge(session, (graph.RUN, run_id), (MODEL_VERSION, row["id"]), "output")
    # read back as the store reads it: what a later get_version returns, to the field
    return version_from_row(SimpleNamespace(**row), name, checked_tags, [])


def get_version(session: Session, ref: str) -> ModelVersion:
    found = find_version(session, ref)
    return version_entity(session, found, found.name)


def manifest_of(session: Session, ref: str) -> tuple[ModelVersion, Manifest]:
    version = get_version(session, ref)
    blob = session.scalar(
        select(ModelVersionRow.manifest).where(ModelVersionRow.id == version.version_id)
    )
    return version, Manifest.from_compressed(blob)


def list_versions(
    session: Session, name: str, max_results: int = 100, page_token: str | None = None
) -> Page[ModelVersion]:
    """A model's versions, newest first."""
    model = model_row(session, name)
    offset = decode_page_token(page_token)
    rows, token = newest_versions(session, NUMBERING, model.id, offset, max_results)
    return Page[ModelVersion](
        items=[version_entity(session, r, model.name) for r in rows], next_page_token=token
    )


def update_version(
    session: Session,
    ref: str,
    *,
    description: str | None = None,
    card: dict[str, str] | None = None,
) -> ModelVersion:
    """Change what people wrote about a version (its description, its card's sections)."""
    model, row = resolve_version_row(session, ref)
    if description is not None:
        row.description = description
    if card is not None:
        merged = {**(json.loads(row.card) if row.card else {}), **card}
        row.card = json.dumps({k: str(v) for k, v in merged.items()})
    session.flush()
    return version_entity(session, row, model.name)


def set_version_tag(session: Session, ref: str, key: str, value: Any) -> ModelVersion:
    model, row = resolve_version_row(session, ref)
    key, text = clean_tag(key, value)
    session.merge(ModelVersionTagRow(version_pk=row.id, key=key, value=text))
    session.flush()
    return version_entity(session, row, model.name)


def delete_version_tag(session: Session, ref: str, key: str) -> ModelVersion:
    """Remove one tag of the version. ``NotFound`` when it has no such tag."""
    model, row = resolve_version_row(session, ref)
    if not delete_tag_row(session, ModelVersionTagRow.version_pk, row.id, key):
        raise NotFound(f"{model.name}@{row.number} has no tag {key!r}")
    return version_entity(session, row, model.name)


def delete_version(session: Session, ref: str) -> None:
    """Delete a version; refused while an alias or a deployment points at it."""
    model, row = resolve_version_row(session, ref)
    shown = f"{model.name}@{row.number}"
    aliases = sorted(aliases_at(session, NUMBERING, model.id, row.number))  # Python's order
    if aliases:
        raise Conflict(
            f"{shown} is the target of alias(es) {aliases}; move or delete them first",
            details={"aliases": aliases},
        )
    refuse_if_served(session, shown, row.id)
    session.delete(row)
    session.flush()


def version_lineage_label(session: Session, version_id: str) -> dict[str, Any]:
    """How a model version appears in a lineage walk: ``model NAME@N``."""
    return lineage_label(session, NUMBERING, RegisteredModelRow, version_id, "model")


def version_node_id(session: Session, ref: str) -> str:
    """The lineage node of ``NAME@N`` / ``NAME@alias`` / ``NAME``."""
    return resolve_version_row(session, ref)[1].id
