"""Dataset and version services: register, resolve, list, alias, tag, validate, lineage.

Every function takes an open session and never commits (the caller owns the transaction).
Versions are immutable: only their tags, aliases and validation verdict change after they are
registered. Registering a manifest a dataset already has returns that version unchanged.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.data.entities import Dataset
from opsloop.data.entities import DatasetVersion
from opsloop.data.entities import TableInfo
from opsloop.data.entities import VersionCreate
from opsloop.data.manifest import FileEntry
from opsloop.data.manifest import Manifest
from opsloop.data.tables import DatasetAliasRow
from opsloop.data.tables import DatasetRow
from opsloop.data.tables import DatasetVersionRow
from opsloop.data.tables import DatasetVersionTagRow
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.paging import Page
from opsloop.kernel.paging import decode_page_token
from opsloop.kernel.paging import split_page
from opsloop.kernel.paths import check_relative_path
from opsloop.kernel.refs import check_alias
from opsloop.kernel.refs import check_dataset_name
from opsloop.kernel.refs import parse_ref
from opsloop.kernel.timeutil import now_ms
from opsloop.lineage import graph
from opsloop.store import numbered
from opsloop.store.blobs import check_digest
from opsloop.store.columns import named_row
from opsloop.store.columns import tags_of
from opsloop.store.database import dialect_insert
from opsloop.store.rows import from_row
from opsloop.tracking.validation import check_key
from opsloop.tracking.validation import tag_value_to_str

__all__ = [
    "RELATIONS",
    "create_version",
    "delete_alias",
    "get_dataset",
    "get_manifest",
    "get_validation",
    "get_version",
    "list_datasets",
    "list_versions",
    "log_lineage",
    "manifest_from_rows",
    "record_validation",
    "register_version",
    "set_alias",
    "set_version_tag",
    "version_lineage_label",
    "version_node_id",
    "version_row",
]

RELATIONS = ("input", "output")
_NUMBERING = numbered.Numbering(
    "dataset", DatasetVersionRow, "dataset_id", DatasetAliasRow, "alias"
)


def manifest_from_rows(rows: list[tuple[str, str, int]]) -> Manifest:
    """A manifest from wire rows, refusing bad digests, sizes, duplicate or unsafe paths."""
    entries = []
    seen: set[str] = set()
    for path, digest, size in rows:
        check_digest(digest)
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 2**63:
            raise InvalidInput(f"size of {path!r} must be a whole number of bytes, got {size!r}")
        if check_relative_path(path, "manifest path") != path:
            raise InvalidInput(
                f"manifest path {path!r} is not in its normal form (no '.', '//' or trailing '/')"
            )
        if path in seen:
            raise InvalidInput(f"path {path!r} appears twice in the manifest")
        seen.add(path)
        entries.append(FileEntry(path, digest, size))
    if not entries:
        raise InvalidInput("a version needs at least one file")
    return Manifest(entries)


# -- lookups --------------------------------------------------------------------------------------
def _dataset(session: Session, name: str) -> DatasetRow:
    row: DatasetRow = named_row(session, DatasetRow, name, "dataset")
    return row


def _version_row(session: Session, ref: str) -> tuple[DatasetRow, DatasetVersionRow]:
    parsed = parse_ref(ref)
    dataset = _dataset(session, parsed.name)
    return dataset, numbered.version_row(session, _NUMBERING, parsed, dataset.id)


def version_row(session: Session, ref: str) -> tuple[DatasetRow, DatasetVersionRow]:
    """The dataset and version rows ``ref`` names (for other domains' lineage edges)."""
    return _version_row(session, ref)


def _to_entity(session: Session, dataset: DatasetRow, row: DatasetVersionRow) -> DatasetVersion:
    tags = tags_of(session, DatasetVersionTagRow.version_pk, row.id)
    aliases = numbered.aliases_at(session, _NUMBERING, dataset.id, row.number)
    table = TableInfo.model_validate_json(row.table_info) if row.table_info else None
    return from_row(DatasetVersion, row, name=dataset.name, table=table, tags=tags, aliases=aliases)


def get_version(session: Session, ref: str) -> DatasetVersion:
    """The version ``NAME@N``, ``NAME@ALIAS`` or ``NAME`` (latest) names."""
    return _to_entity(session, *_version_row(session, ref))


def get_manifest(session: Session, ref: str) -> tuple[DatasetVersion, Manifest]:
    """A version and its manifest."""
    dataset, row = _version_row(session, ref)
    return _to_entity(session, dataset, row), Manifest.from_compressed(row.manifest)


# -- writes ---------------------------------------------------------------------------------------
def create_version(
    session: Session,
    name: str,
    manifest: Manifest,
    *,
    kind: str,
    created_by: str,
    message: str | None = None,
    source: str | None = None,
    table: TableInfo | None = None,
    tags: dict[str, Any] | None = None,
) -> tuple[DatasetVersion, bool]:
    """Register ``manifest`` as the next version of ``name`` (created on first use).

    Returns the version and whether it is new: a manifest the dataset already has returns
    that version, so adding identical bytes twice makes no new version.
    """
    check_dataset_name(name)
    if kind not in ("file", "folder", "table"):
        raise InvalidInput(f"kind must be file, folder or table, got {kind!r}")
    now = now_ms()
    dataset = session.scalars(select(DatasetRow).where(DatasetRow.name == name)).first()
    if dataset is None:
        dataset = DatasetRow(id=uuid.uuid4().hex, name=name, created_at=now, updated_at=now)
        session.add(dataset)
        session.flush()
    existing = session.scalars(
        select(DatasetVersionRow).where(
            DatasetVersionRow.dataset_id == dataset.id,
            DatasetVersionRow.version_id == manifest.version_id,
        )
    ).first()
    if existing is not None:
        return _to_entity(session, dataset, existing), False
    number = 1 + (
        session.scalar(
            select(func.max(DatasetVersionRow.number)).where(
                DatasetVersionRow.dataset_id == dataset.id
            )
        )
        or 0
    )
    row = DatasetVersionRow(
        id=uuid.uuid4().hex,
        dataset_id=dataset.id,
        number=number,
        version_id=manifest.version_id,
        kind=kind,
        message=message,
        source=source,
        file_count=len(manifest),
        total_bytes=manifest.total_bytes,
        manifest=manifest.compressed(),
        table_info=table.model_dump_json() if table else None,
        created_at=now,
        created_by=created_by,
    )
    session.add(row)
    dataset.updated_at = now
    session.flush()
    for key, value in (tags or {}).items():
        _set_tag(session, row.id, key, value)
    return _to_entity(session, dataset, row), True


def register_version(
    session: Session, name: str, body: VersionCreate, created_by: str
) -> tuple[DatasetVersion, bool]:
    """:func:`create_version` from the body a client sends (the REST route's and the local
    backend's input alike)."""
    described = dict(body)  # the files, and kind, message, source, table and tags
    manifest = manifest_from_rows(described.pop("files"))
    return create_version(session, name, manifest, created_by=created_by, **described)


def _set_tag(session: Session, version_pk: str, key: str, value: Any) -> None:
    check_key(key, "tag key")
    insert = dialect_insert(session, DatasetVersionTagRow.__table__).values(
        version_pk=version_pk, key=key, value=tag_value_to_str(key, value)
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["version_pk", "key"], set_={"value": insert.excluded.value}
        )
    )


def set_version_tag(session: Session, ref: str, key: str, value: Any) -> DatasetVersion:
    dataset, row = _version_row(session, ref)
    _set_tag(session, row.id, key, value)
    return _to_entity(session, dataset, row)


def set_alias(session: Session, ref: str, alias: str) -> DatasetVersion:
    """Point ``alias`` at the version ``ref`` names (moving it if it pointed elsewhere)."""
    check_alias(alias)
    dataset, row = _version_row(session, ref)
    insert = dialect_insert(session, DatasetAliasRow.__table__).values(
        dataset_id=dataset.id, alias=alias, number=row.number
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["dataset_id", "alias"], set_={"number": insert.excluded.number}
        )
    )
    return _to_entity(session, dataset, row)


def delete_alias(session: Session, name: str, alias: str) -> None:
    check_alias(alias)
    dataset = _dataset(session, check_dataset_name(name))
    result = session.execute(
        delete(DatasetAliasRow).where(
            DatasetAliasRow.dataset_id == dataset.id, DatasetAliasRow.alias == alias
        )
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"dataset {name!r} has no alias {alias!r}")


def record_validation(
    session: Session, ref: str, report: dict[str, Any], passed: bool
) -> DatasetVersion:
    """Store a validation report on a version and mark it passed or failed."""
    dataset, row = _version_row(session, ref)
    row.validation_status = "passed" if passed else "failed"
    row.validation_report = json.dumps(report)
    return _to_entity(session, dataset, row)


def get_validation(session: Session, ref: str) -> dict[str, Any]:
    _, row = _version_row(session, ref)
    if row.validation_report is None:
        raise NotFound(f"{ref} has not been validated yet: run `opsloop data validate {ref}`")
    report: dict[str, Any] = json.loads(row.validation_report)
    return report


# -- listings -------------------------------------------------------------------------------------
def _datasets(session: Session, where: Any, offset: int, limit: int) -> list[Dataset]:
    counts = (
        select(
            DatasetVersionRow.dataset_id,
            func.count().label("n"),
            func.max(DatasetVersionRow.number).label("latest"),
        )
        .group_by(DatasetVersionRow.dataset_id)
        .subquery()
    )
    query = select(DatasetRow, counts.c.n, counts.c.latest).outerjoin(
        counts, counts.c.dataset_id == DatasetRow.id
    )
    if where is not None:
        query = query.where(where)
    rows = session.execute(query.order_by(DatasetRow.name).offset(offset).limit(limit)).all()
    aliases: dict[str, dict[str, int]] = {}
    for dataset_id, alias, number in session.execute(
        select(DatasetAliasRow.dataset_id, DatasetAliasRow.alias, DatasetAliasRow.number).where(
            DatasetAliasRow.dataset_id.in_([r[0].id for r in rows])
        )
    ):
        aliases.setdefault(dataset_id, {})[alias] = number
    return [
        from_row(Dataset, d, version_count=n or 0, latest=latest, aliases=aliases.get(d.id, {}))
        for d, n, latest in rows
    ]


def get_dataset(session: Session, name: str) -> Dataset:
    found = _datasets(session, DatasetRow.name == check_dataset_name(name), 0, 1)
    if not found:
        raise NotFound(f"dataset {name!r} does not exist")
    return found[0]


def list_datasets(
    session: Session, max_results: int = 100, page_token: str | None = None
) -> Page[Dataset]:
    """Every dataset by name, with its version count, latest number and aliases."""
    offset = decode_page_token(page_token)
    items, token = split_page(
        _datasets(session, None, offset, max_results + 1), offset, max_results
    )
    return Page(items=items, next_page_token=token)


def list_versions(
    session: Session, name: str, max_results: int = 100, page_token: str | None = None
) -> Page[DatasetVersion]:
    """A dataset's versions, newest first."""
    offset = decode_page_token(page_token)
    dataset = _dataset(session, check_dataset_name(name))
    rows, token = numbered.newest_versions(session, _NUMBERING, dataset.id, offset, max_results)
    return Page(items=[_to_entity(session, dataset, r) for r in rows], next_page_token=token)


# -- lineage --------------------------------------------------------------------------------------
def log_lineage(session: Session, run_id: str, ref: str, relation: str) -> DatasetVersion:
    """Record that a run consumed (``input``) or produced (``output``) a version."""
    from opsloop.tracking.runs import require_run

    if relation not in RELATIONS:
        raise InvalidInput(f"relation must be one of {RELATIONS}, got {relation!r}")
    run_id = require_run(session, run_id).id
    dataset, row = _version_row(session, ref)
    node = (graph.DATASET_VERSION, row.id)
    run = (graph.RUN, run_id)
    if relation == "input":
        graph.add_edge(session, node, run, "input")
    else:
        graph.add_edge(session, run, node, "output")
    return _to_entity(session, dataset, row)


def version_lineage_label(session: Session, version_id: str) -> dict[str, Any]:
    """How a dataset version appears in a lineage walk: ``data NAME@N``."""
    return numbered.lineage_label(session, _NUMBERING, DatasetRow, version_id, "data")


def version_node_id(session: Session, ref: str) -> str:
    """The lineage node of ``NAME@N`` / ``NAME@alias`` / ``NAME``."""
    return version_row(session, ref)[1].id
