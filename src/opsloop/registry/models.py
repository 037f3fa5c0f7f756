"""Registry services: registered models, their tags, and the lookups of models and versions
(versions themselves are :mod:`opsloop.registry.versions`; aliases :mod:`.aliases`).

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

from sqlalchemy import bindparam
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import select
from sqlalchemy import union_all
from sqlalchemy.orm import Session

from opsloop.errors import Conflict
from opsloop.errors import NotFound
from opsloop.kernel.paging import Page
from opsloop.kernel.paging import decode_page_token
from opsloop.kernel.paging import split_page
from opsloop.kernel.refs import LATEST
from opsloop.kernel.refs import check_name
from opsloop.kernel.refs import parse_ref
from opsloop.kernel.timeutil import now_ms
from opsloop.lineage import graph
from opsloop.registry.entities import ModelVersion
from opsloop.registry.entities import RegisteredModel
from opsloop.registry.entities import version_from_row
from opsloop.registry.tables import ModelAliasRow
from opsloop.registry.tables import ModelVersionRow
from opsloop.registry.tables import ModelVersionTagRow
from opsloop.registry.tables import RegisteredModelRow
from opsloop.registry.tables import RegisteredModelTagRow
from opsloop.store.columns import delete_tag_row
from opsloop.store.columns import tags_of
from opsloop.store.numbered import Numbering
from opsloop.store.numbered import version_row
from opsloop.store.rows import from_row
from opsloop.tracking.validation import clean_tag
from opsloop.tracking.validation import clean_tags

__all__ = [
    "MODEL_VERSION",
    "NUMBERING",
    "create_model",
    "delete_model",
    "delete_model_tag",
    "ensure_model",
    "find_version",
    "get_model",
    "list_models",
    "model_row",
    "refuse_if_served",
    "rename_model",
    "resolve_version_row",
    "set_model_tag",
    "update_model",
    "version_entity",
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
    policy = json.loads(row.gate_policy) if row.gate_policy else None
    updated = max(row.updated_at, newest or 0)  # a new version is an update
    given = {"tags": tags, "aliases": aliases, "latest_version": latest, "gate_policy": policy}
    return from_row(RegisteredModel, row, updated_at=updated, **given)


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


def find_version(session: Session, ref: str) -> Any:
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


def version_entity(session: Session, row: Any, name: str) -> ModelVersion:
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
    return version_from_row(row, name, tags, aliases)


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
    for key, value in clean_tags(tags).items():
        session.add(RegisteredModelTagRow(model_id=row.id, key=key, value=value))
    session.flush()
    return _model_entity(session, row)


def ensure_model(session: Session, name: str, created_by: str) -> RegisteredModelRow:
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
        refuse_if_served(session, f"{name}", version_id)
    session.delete(row)
    session.flush()


def set_model_tag(session: Session, name: str, key: str, value: Any) -> RegisteredModel:
    row = model_row(session, name)
    key, text = clean_tag(key, value)
    session.merge(RegisteredModelTagRow(model_id=row.id, key=key, value=text))
    session.flush()
    return _model_entity(session, row)


def delete_model_tag(session: Session, name: str, key: str) -> RegisteredModel:
    """Remove one tag of the model. ``NotFound`` when it has no such tag."""
    row = model_row(session, name)
    if not delete_tag_row(session, RegisteredModelTagRow.model_id, row.id, key):
        raise NotFound(f"model {name!r} has no tag {key!r}")
    return _model_entity(session, row)


def rename_model(session: Session, name: str, new_name: str) -> RegisteredModel:
    """Give a model a new name; its versions, aliases and history follow it. Refused while a
    deployment serves one of its versions (the deployment names it by its old name), and
    ``Conflict`` when ``new_name`` is taken."""
    row = model_row(session, name)
    check_name(new_name, _NOUN)
    if new_name == name:
        return _model_entity(session, row)
    if session.scalars(
        select(RegisteredModelRow.id).where(RegisteredModelRow.name == new_name)
    ).first():
        raise Conflict(f"model {new_name!r} is already registered")
    for (version_id,) in session.execute(
        select(ModelVersionRow.id).where(ModelVersionRow.model_id == row.id)
    ):
        refuse_if_served(session, name, version_id)
    row.name = new_name
    row.updated_at = now_ms()
    session.flush()
    return _model_entity(session, row)


def refuse_if_served(session: Session, ref: str, version_id: str) -> None:
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
