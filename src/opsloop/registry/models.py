"""Registry services: registered models, immutable versions, tags, aliases and their history.

Every function takes an open session and never commits. A version's package files are in the
blob store before it is registered; registering reads the package's ``opsloop-model.json``
from there (the registry trusts what it checked, not what a client said), and a version made
from a run must come from a run that finished. Aliases move only through here, and every move
(manual, gated, forced, rejected) is written to the alias history.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import bindparam, exists, func, literal, select, union_all
from sqlalchemy.orm import Session

from opsloop.data.manifest import Manifest
from opsloop.data.versions import manifest_from_rows
from opsloop.errors import Conflict, InvalidInput, NotFound
from opsloop.kernel.paging import Page, decode_page_token, split_page
from opsloop.kernel.refs import LATEST, check_name, parse_ref
from opsloop.kernel.step_context import STEP_RUN_TAG
from opsloop.kernel.timeutil import now_ms
from opsloop.lineage import graph
from opsloop.registry.entities import ModelVersion, RegisteredModel
from opsloop.registry.package import META_FILE, PackageMeta
from opsloop.registry.tables import (
    ModelAliasRow,
    ModelVersionRow,
    ModelVersionTagRow,
    RegisteredModelRow,
    RegisteredModelTagRow,
)
from opsloop.store.blobs import BlobStore
from opsloop.store.columns import tags_of
from opsloop.store.numbered import (
    Numbering,
    aliases_at,
    lineage_label,
    newest_versions,
    version_row,
)
from opsloop.tracking.entities import RunStatus
from opsloop.tracking.tables import ArtifactRow, RunRow
from opsloop.tracking.validation import check_artifact_path, check_key, tag_value_to_str

__all__ = [
    "NUMBERING",
    "create_model",
    "create_version",
    "delete_model",
    "delete_version",
    "get_model",
    "get_version",
    "list_models",
    "list_versions",
    "manifest_of",
    "model_row",
    "resolve_version_row",
    "run_manifest_rows",
    "set_model_tag",
    "set_version_tag",
    "update_model",
    "update_version",
    "version_lineage_label",
    "version_node_id",
]

MODEL_VERSION = "model_version"
_NOUN = "model"
NUMBERING = Numbering(_NOUN, ModelVersionRow, "model_id", ModelAliasRow, "alias")


# -- lookups --------------------------------------------------------------------------------------
def model_row(session: Session, name: str) -> RegisteredModelRow:
    row = session.scalars(
        select(RegisteredModelRow).where(RegisteredModelRow.name == check_name(name, _NOUN))
    ).first()
    if row is None:
        raise NotFound(f"model {name!r} is not registered")
    return row


def resolve_version_row(session: Session, ref: str) -> tuple[RegisteredModelRow, ModelVersionRow]:
    """The model and version rows that ``NAME@N``, ``NAME@alias`` or ``NAME`` name."""
    parsed = parse_ref(ref, _NOUN)
    model = model_row(session, parsed.name)
    return model, version_row(session, NUMBERING, parsed, model.id)


def _model_entity(session: Session, row: RegisteredModelRow) -> RegisteredModel:
    tags = tags_of(session, RegisteredModelTagRow.model_id, row.id)
    aliases = dict(
        session.execute(
            select(ModelAliasRow.alias, ModelAliasRow.number)
            .where(ModelAliasRow.model_id == row.id)
            .order_by(ModelAliasRow.alias)
        ).all()
    )
    latest, newest = session.execute(
        select(func.max(ModelVersionRow.number), func.max(ModelVersionRow.created_at)).where(
            ModelVersionRow.model_id == row.id
        )
    ).one()
    return RegisteredModel(
        name=row.name,
        description=row.description,
        tags=tags,
        aliases=aliases,
        latest_version=latest,
        gate_policy=json.loads(row.gate_policy) if row.gate_policy else None,
        created_at=row.created_at,
        updated_at=max(row.updated_at, newest or 0),  # a new version is an update
        created_by=row.created_by,
    )


_MODELS = RegisteredModelRow.__table__
_VERSIONS = ModelVersionRow.__table__
_ALIASES = ModelAliasRow.__table__
_VERSION_TAGS = ModelVersionTagRow.__table__
# A version's aliases (their characters exclude ",") and whether it has tags come with it, so
# resolving a version is one query (tags, which are rare, take a second one).
_HELD = _ALIASES.alias("held")  # its own name: the alias lookup joins model_aliases too
_VERSION_COLUMNS = [
    *(c for c in _VERSIONS.c if c.name != "manifest"),
    select(func.aggregate_strings(_HELD.c.alias, ","))
    .where(_HELD.c.model_id == _VERSIONS.c.model_id, _HELD.c.number == _VERSIONS.c.number)
    .correlate(_VERSIONS)
    .scalar_subquery()
    .label("alias_list"),
    exists()
    .where(_VERSION_TAGS.c.version_pk == _VERSIONS.c.id)
    .correlate(_VERSIONS)
    .label("has_tags"),
]
# Reads of one version are the registry's hot path (every load, every alias resolution): the
# statements are built once with bind parameters, and a version is found in one query whether
# it is named by number, alias or latest.
_BY_NUMBER = (
    select(_MODELS.c.name, *_VERSION_COLUMNS)
    .join_from(_MODELS, _VERSIONS, _VERSIONS.c.model_id == _MODELS.c.id)
    .where(_MODELS.c.name == bindparam("name"), _VERSIONS.c.number == bindparam("number"))
)
_BY_ALIAS = (
    select(_MODELS.c.name, *_VERSION_COLUMNS)
    .select_from(
        _MODELS.join(_ALIASES, _ALIASES.c.model_id == _MODELS.c.id).join(
            _VERSIONS,
            (_VERSIONS.c.model_id == _MODELS.c.id) & (_VERSIONS.c.number == _ALIASES.c.number),
        )
    )
    .where(_MODELS.c.name == bindparam("name"), _ALIASES.c.alias == bindparam("alias"))
)
_LATEST = (
    select(_MODELS.c.name, *_VERSION_COLUMNS)
    .join_from(_MODELS, _VERSIONS, _VERSIONS.c.model_id == _MODELS.c.id)
    .where(_MODELS.c.name == bindparam("name"))
    .order_by(_VERSIONS.c.number.desc())
    .limit(1)
)
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
_TAGS = select(_VERSION_TAGS.c.key, _VERSION_TAGS.c.value).where(
    _VERSION_TAGS.c.version_pk == bindparam("version_id")
)
_LABELS = union_all(
    select(literal("tag").label("kind"), _VERSION_TAGS.c.key, _VERSION_TAGS.c.value).where(
        _VERSION_TAGS.c.version_pk == bindparam("version_id")
    ),
    select(literal("alias"), _ALIASES.c.alias, literal("")).where(
        _ALIASES.c.model_id == bindparam("model_id"), _ALIASES.c.number == bindparam("number")
    ),
)


def _find_version(session: Session, ref: str) -> Any:
    """The version's columns (no manifest) and its model's name, in one query; the precise
    ``NotFound`` (no model, no alias, no such number) comes from the slow path."""
    parsed = parse_ref(ref, _NOUN)
    if parsed.alias == LATEST:
        query, params = _LATEST, {"name": parsed.name}
    elif parsed.alias is not None:
        query, params = _BY_ALIAS, {"name": parsed.name, "alias": parsed.alias}
    else:
        query, params = _BY_NUMBER, {"name": parsed.name, "number": parsed.number}
    found = session.connection().execute(query, params).first()
    if found is None:
        resolve_version_row(session, ref)  # raises the NotFound that says what is missing
        raise NotFound(f"model version {ref} does not exist")  # pragma: no cover - a race
    return found


def _version_entity(session: Session, row: Any, name: str) -> ModelVersion:
    """A version from its row and its model's name. Rows from the lookups above carry their
    aliases and a tags flag; other rows (ORM) get their labels in one more query."""
    tags: dict[str, str] = {}
    aliases: list[str] = []
    if hasattr(row, "alias_list"):
        aliases = row.alias_list.split(",") if row.alias_list else []
        if row.has_tags:
            tags = dict(session.connection().execute(_TAGS, {"version_id": row.id}).all())
    else:
        params = {"version_id": row.id, "model_id": row.model_id, "number": row.number}
        for kind, key, value in session.connection().execute(_LABELS, params):
            if kind == "tag":
                tags[key] = value
            else:
                aliases.append(key)
    meta = json.loads(row.package)
    return ModelVersion(
        name=name,
        number=row.number,
        version_id=row.id,
        package_id=row.package_id,
        flavor=row.flavor,
        task=meta.get("task"),
        signature=meta["signature"],
        classes=meta.get("classes"),
        requirements=meta.get("requirements", []),
        source=row.source,
        run_id=row.run_id,
        description=row.description,
        card=json.loads(row.card) if row.card else {},
        tags=tags,
        aliases=sorted(aliases),
        file_count=row.file_count,
        total_bytes=row.total_bytes,
        created_at=row.created_at,
        created_by=row.created_by,
    )


# -- models ---------------------------------------------------------------------------------------
def create_model(
    session: Session,
    name: str,
    *,
    created_by: str,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
) -> RegisteredModel:
    """Register a new model name. Raises ``Conflict`` if it exists."""
    check_name(name, _NOUN)
    if session.scalars(
        select(RegisteredModelRow.id).where(RegisteredModelRow.name == name)
    ).first():
        raise Conflict(f"model {name!r} is already registered")
    now = now_ms()
    row = RegisteredModelRow(
        id=uuid.uuid4().hex,
        name=name,
        description=description,
        created_at=now,
        updated_at=now,
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    for key, value in (tags or {}).items():
        session.add(
            RegisteredModelTagRow(
                model_id=row.id, key=check_key(key, "tag key"), value=tag_value_to_str(key, value)
            )
        )
    session.flush()
    return _model_entity(session, row)


def _ensure_model(session: Session, name: str, created_by: str) -> RegisteredModelRow:
    try:
        return model_row(session, name)
    except NotFound:
        create_model(session, name, created_by=created_by)
        return model_row(session, name)


def get_model(session: Session, name: str) -> RegisteredModel:
    return _model_entity(session, model_row(session, name))


def list_models(
    session: Session, max_results: int = 100, page_token: str | None = None
) -> Page[RegisteredModel]:
    """Registered models by name."""
    offset = decode_page_token(page_token)
    rows = session.scalars(
        select(RegisteredModelRow)
        .order_by(RegisteredModelRow.name)
        .offset(offset)
        .limit(max_results + 1)
    ).all()
    rows, token = split_page(rows, offset, max_results)
    return Page[RegisteredModel](
        items=[_model_entity(session, r) for r in rows], next_page_token=token
    )


def update_model(
    session: Session,
    name: str,
    *,
    description: str | None = None,
    gate_policy: dict[str, Any] | None = None,
) -> RegisteredModel:
    """Change a model's description, or the gate policy its promotions use by default."""
    row = model_row(session, name)
    if description is not None:
        row.description = description
    if gate_policy is not None:
        from opsloop.evaluation.gates import GatePolicy

        GatePolicy.from_mapping(gate_policy)  # refuse a bad policy before storing it
        row.gate_policy = json.dumps(gate_policy)
    row.updated_at = now_ms()
    session.flush()
    return _model_entity(session, row)


def delete_model(session: Session, name: str) -> None:
    """Delete a model and all its versions; refused while any alias points at one."""
    row = model_row(session, name)
    aliases = session.scalars(select(ModelAliasRow.alias).where(ModelAliasRow.model_id == row.id))
    held = sorted(aliases)
    if held:
        raise Conflict(
            f"model {name!r} still has aliases {held}; delete them first",
            details={"aliases": held},
        )
    for (version_id,) in session.execute(
        select(ModelVersionRow.id).where(ModelVersionRow.model_id == row.id)
    ):
        _refuse_if_served(session, f"{name}", version_id)
    session.delete(row)
    session.flush()


def set_model_tag(session: Session, name: str, key: str, value: Any) -> RegisteredModel:
    row = model_row(session, name)
    session.merge(
        RegisteredModelTagRow(
            model_id=row.id, key=check_key(key, "tag key"), value=tag_value_to_str(key, value)
        )
    )
    session.flush()
    return _model_entity(session, row)


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
) -> ModelVersion:
    """Register the package ``files`` (already in the blob store) as ``name``'s next version.

    The model is registered on first use. Raises ``InvalidInput`` for files that are not a
    package or not uploaded, ``Conflict`` for a run that has not finished (a step's run, named
    by the ``STEP_RUN_TAG`` tag of a model registered inside the step, may still be running).
    """
    check_name(name, _NOUN)
    manifest = manifest_from_rows(files)
    meta = _known_package(session, manifest.version_id) or _read_package(blobs, manifest)
    clean_tags = {check_key(k, "tag key"): tag_value_to_str(k, v) for k, v in (tags or {}).items()}
    # Registered inside a pipeline step, a live model names no run but carries the step's:
    # that run (RUNNING while its step runs) is the version's run, so lineage walks from the
    # version to the step, its pipeline run, the data they read and the commit.
    step_run = clean_tags.get(STEP_RUN_TAG) if run_id is None else None
    conn = session.connection()  # Core statements, not the ORM: registering is a hot path
    model_id, latest, run_status = conn.execute(
        _REGISTRATION_FACTS, {"name": name, "run_id": run_id or step_run}
    ).one()
    if run_id is not None:
        _check_finished(run_id, run_status)
    elif step_run is not None:
        if run_status is None:
            raise NotFound(f"step run {step_run} (tag {STEP_RUN_TAG}) does not exist")
        run_id = step_run
    if model_id is None:
        model_id = _ensure_model(session, name, created_by).id
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
    if clean_tags:
        conn.execute(
            _VERSION_TAGS.insert(),
            [{"version_pk": row["id"], "key": k, "value": v} for k, v in clean_tags.items()],
        )
    if run_id is not None:
        graph.add_edge(session, (graph.RUN, run_id), (MODEL_VERSION, row["id"]), "output")
    return ModelVersion(
        name=name,
        number=number,
        version_id=row["id"],
        package_id=manifest.version_id,
        flavor=meta.flavor,
        task=meta.task,
        signature=meta.signature,
        classes=meta.classes,
        requirements=meta.requirements,
        source=source,
        run_id=run_id,
        description=description,
        card=card or {},
        tags=clean_tags,
        aliases=[],
        file_count=len(manifest),
        total_bytes=manifest.total_bytes,
        created_at=now,
        created_by=created_by,
    )


def get_version(session: Session, ref: str) -> ModelVersion:
    found = _find_version(session, ref)
    return _version_entity(session, found, found.name)


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
        items=[_version_entity(session, r, model.name) for r in rows], next_page_token=token
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
    return _version_entity(session, row, model.name)


def set_version_tag(session: Session, ref: str, key: str, value: Any) -> ModelVersion:
    model, row = resolve_version_row(session, ref)
    session.merge(
        ModelVersionTagRow(
            version_pk=row.id, key=check_key(key, "tag key"), value=tag_value_to_str(key, value)
        )
    )
    session.flush()
    return _version_entity(session, row, model.name)


def _refuse_if_served(session: Session, ref: str, version_id: str) -> None:
    serving = [
        e.source_id
        for e in graph.edges_touching(session, (MODEL_VERSION, version_id))
        if e.relation == "serves"
    ]
    if serving:
        raise Conflict(
            f"{ref} is served by deployment(s) {serving}; move them off it first",
            details={"deployments": serving},
        )


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
    _refuse_if_served(session, shown, row.id)
    session.delete(row)
    session.flush()


def version_lineage_label(session: Session, version_id: str) -> dict[str, Any]:
    """How a model version appears in a lineage walk: ``model NAME@N``."""
    return lineage_label(session, NUMBERING, RegisteredModelRow, version_id, "model")


def version_node_id(session: Session, ref: str) -> str:
    """The lineage node of ``NAME@N`` / ``NAME@alias`` / ``NAME``."""
    return resolve_version_row(session, ref)[1].id
