"""MLflow's model registry over opsloop's: the same models, versions, aliases and tags.

opsloop model names, integer versions and aliases are MLflow's, so most calls are a service call
and a change of shape. What MLflow has and opsloop does not is mapped here once:

- a version registered through MLflow (``create_model_version`` with a ``runs:/``,
  ``models:/<model_id>``, ``models:/<name>/<version>`` or ``mlflow-artifacts:/`` source) becomes
  a registry version holding the MLflow model directory found there, plus the
  ``opsloop-model.json`` written from its ``MLmodel`` (flavor ``mlflow``, never unpickled by
  opsloop, see :mod:`.mlflow_package`); it is linked to the run that holds the files (lineage),
  even while that run is still running, as MLflow registers inside an active run;
- its origin and MLflow's extra fields are version tags under ``opsloop.``: ``opsloop.origin``
  (``mlflow``), :data:`MODEL_ID_TAG` (the logged model), :data:`FLAVORS_TAG` (what ``MLmodel``
  declares) and :data:`STAGE_TAG` (MLflow's deprecated stages); MLflow's client never sees tags
  under ``opsloop.``;
- deleting a model or a version through MLflow removes its aliases first (recorded in the alias
  history), as MLflow does; opsloop's own API still refuses while an alias points at it. A
  version a deployment serves is refused either way.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.identity import current_user
from opsloop.registry import aliases
from opsloop.registry import mlflow_logged
from opsloop.registry import models
from opsloop.registry import versions
from opsloop.registry.entities import ModelVersion
from opsloop.registry.entities import RegisteredModel
from opsloop.registry.mlflow_filters import Search
from opsloop.registry.mlflow_filters import field_of
from opsloop.registry.mlflow_filters import matches
from opsloop.registry.mlflow_package import mlflow_flavors
from opsloop.registry.mlflow_package import with_opsloop_meta
from opsloop.store.blobs import BlobStore
from opsloop.tracking.mlflow_protocol import ORIGIN_TAG
from opsloop.tracking.mlflow_protocol import artifact_uri
from opsloop.tracking.runs import require_run

__all__ = [
    "FLAVORS_TAG",
    "MODEL_ID_TAG",
    "STAGE_TAG",
    "all_versions",
    "create_model_version",
    "delete_model",
    "delete_version",
    "download_uri",
    "latest_versions",
    "model_json",
    "parse_version",
    "search_models",
    "search_versions",
    "transition_stage",
    "version_json",
]

MODEL_ID_TAG = "opsloop.mlflow.model_id"
FLAVORS_TAG = "opsloop.mlflow.flavors"
STAGE_TAG = "opsloop.mlflow.stage"
_HIDDEN = "opsloop."  # opsloop's own tags: not shown to MLflow's client
_STAGES = {"none": "None", "staging": "Staging", "production": "Production", "archived": "Archived"}
_PAGE = 1000
_RUNS_URI = re.compile(r"^runs:/(?P<run>[0-9a-f]{32})(?:/(?P<path>.*))?$")
_ARTIFACTS_URI = re.compile(
    r"^(?:mlflow-artifacts:|https?://[^/]+/api/2\.0/mlflow-artifacts/artifacts)"
    r"/+(?P<experiment>[^/]+)/(?P<run>[0-9a-f]{32})/artifacts(?:/(?P<path>.*))?$"
)
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>[^/]+))?/?$")
_MODEL_FILTER = ("name", "tags.")
_MODEL_ORDER = ("name", "creation_timestamp", "last_updated_timestamp", "timestamp")
_VERSION_FILTER = ("name", "version_number", "run_id", "source_path", "model_id", "tags.")
_VERSION_ORDER = ("name", "version_number", "creation_timestamp", "last_updated_timestamp")


# -- shapes ---------------------------------------------------------------------------------------
def _visible(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items() if not k.startswith(_HIDDEN)]


def version_json(version: ModelVersion) -> dict[str, Any]:
    """MLflow's ``ModelVersion`` message for ``version``."""
    out: dict[str, Any] = {
        "name": version.name,
        "version": str(version.number),
        "creation_timestamp": version.created_at,
        "last_updated_timestamp": version.created_at,
        "user_id": version.created_by,
        "current_stage": version.tags.get(STAGE_TAG, "None"),
        "description": version.description or "",
        "source": version.source or "",
        "run_id": version.run_id or "",
        "status": "READY",
        "tags": _visible(version.tags),
        "aliases": version.aliases,
    }
    if MODEL_ID_TAG in version.tags:
        out["model_id"] = version.tags[MODEL_ID_TAG]
    return out


def model_json(session: Session, model: RegisteredModel) -> dict[str, Any]:
    """MLflow's ``RegisteredModel`` message, its newest version as ``latest_versions``."""
    out: dict[str, Any] = {
        "name": model.name,
        "creation_timestamp": model.created_at,
        "last_updated_timestamp": model.updated_at,
        "user_id": model.created_by,
        "description": model.description or "",
        "tags": _visible(model.tags),
        "aliases": [{"alias": a, "version": str(n)} for a, n in model.aliases.items()],
    }
    if model.latest_version is not None:
        latest = versions.get_version(session, f"{model.name}@{model.latest_version}")
        out["latest_versions"] = [version_json(latest)]
    return out


def parse_version(version: Any) -> int:
    """MLflow sends version numbers as strings; ``InvalidInput`` unless one is a number."""
    text = str(version).strip()
    if not text.isdigit() or int(text) < 1:
        raise InvalidInput(f"version must be a positive integer, got {version!r}")
    return int(text)


# -- registering --------------------------------------------------------------------------------
def _locate(
    session: Session, source: str, model_id: str | None
) -> tuple[str, list[tuple[str, str, int]], str | None]:
    """The run that holds the model's files, the files, and the logged model they are."""
    if not model_id and source.startswith("models:/m-"):
        model_id = source[len("models:/") :].strip("/")
    if model_id:
        logged = mlflow_logged.get_logged_model(session, model_id)
        files = versions.run_manifest_rows(session, logged.run_id, logged.folder)
        return logged.run_id, files, model_id
    if found := _MODELS_URI.match(source):
        selector = found["version"] or found["alias"] or "latest"
        version, manifest = versions.manifest_of(session, f"{found['name']}@{selector}")
        if version.run_id is None:
            raise InvalidInput(f"{source} names a version that no run produced")
        rows = [(e.path, e.digest, e.size) for e in manifest.entries]
        return version.run_id, rows, version.tags.get(MODEL_ID_TAG)
    found = _RUNS_URI.match(source) or _ARTIFACTS_URI.match(source)
    if found is None:
        raise InvalidInput(
            f"cannot register from {source!r}: opsloop registers MLflow models from "
            "runs:/RUN/PATH, "
            "models:/MODEL_ID, models:/NAME/VERSION or this server's mlflow-artifacts:/ URIs"
        )
    run_id = require_run(session, found["run"]).id
    path = (found["path"] or "").strip("/")
    if not path:
        raise InvalidInput(f"{source} names a run but no folder inside it")
    return run_id, versions.run_manifest_rows(session, run_id, path), None


def create_model_version(
    session: Session,
    blobs: BlobStore,
    name: str,
    source: str,
    *,
    model_id: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
) -> ModelVersion:
    """Register the MLflow model at ``source`` as ``name``'s next version (see the module
    docstring). ``NotFound`` for an unknown run, logged model or empty folder; ``InvalidInput``
    for a source opsloop cannot read or a folder that is not an MLflow model."""
    if not source:
        raise InvalidInput("source is required: the URI of the model's files")
    run_id, files, logged_id = _locate(session, source, model_id)
    package = with_opsloop_meta(blobs, files, source)
    own_tags = {ORIGIN_TAG: "mlflow"}
    flavors = mlflow_flavors(blobs, files)
    if flavors:
        own_tags[FLAVORS_TAG] = ",".join(flavors)
    if logged_id:
        own_tags[MODEL_ID_TAG] = logged_id
    return versions.create_version(
        session,
        blobs,
        name,
        package,
        created_by=current_user(),
        run_id=run_id,
        source=source,
        description=description or None,
        tags={**(tags or {}), **own_tags},
        live_run=True,
    )


def download_uri(session: Session, version: ModelVersion) -> str:
    """Where MLflow's client downloads the version's files: the run folder they came from."""
    logged_id = version.tags.get(MODEL_ID_TAG)
    if logged_id:
        logged = mlflow_logged.get_logged_model(session, logged_id)
        return f"{artifact_uri(logged.experiment_id, logged.run_id)}/{logged.folder}"
    source = version.source or ""
    found = _RUNS_URI.match(source)
    if found and found["path"]:
        run = require_run(session, found["run"])
        return f"{artifact_uri(run.experiment_id, run.id)}/{found['path'].strip('/')}"
    if _ARTIFACTS_URI.match(source):
        return source
    raise InvalidInput(
        f"{version.ref} was not registered from a run folder; fetch its files with "
        "opsloop's API (GET /api/models/NAME/versions/N/manifest)"
    )


# -- deleting and stages --------------------------------------------------------------------------
def delete_model(session: Session, name: str) -> None:
    """Delete a model, its aliases first (recorded), as MLflow does."""
    for alias in models.get_model(session, name).aliases:
        aliases.delete_alias(session, name, alias, created_by=current_user())
    models.delete_model(session, name)


def delete_version(session: Session, name: str, number: int) -> None:
    """Delete a version, the aliases that point at it first (recorded), as MLflow does."""
    version = versions.get_version(session, f"{name}@{number}")
    for alias in version.aliases:
        aliases.delete_alias(session, name, alias, created_by=current_user())
    versions.delete_version(session, f"{name}@{number}")


def transition_stage(
    session: Session, name: str, number: int, stage: str, archive_existing: bool
) -> ModelVersion:
    """MLflow's deprecated stages, kept as a version tag; ``archive_existing`` moves the other
    versions in that stage to ``Archived``."""
    canonical = _STAGES.get(str(stage).lower())
    if canonical is None:
        raise InvalidInput(f"unknown stage {stage!r}; one of {sorted(_STAGES.values())}")
    if archive_existing and canonical in ("Staging", "Production"):
        for other in all_versions(session, name):
            if other.number != number and other.tags.get(STAGE_TAG) == canonical:
                versions.set_version_tag(session, other.ref, STAGE_TAG, "Archived")
    return versions.set_version_tag(session, f"{name}@{number}", STAGE_TAG, canonical)


# -- listing and search ---------------------------------------------------------------------------
def all_versions(session: Session, name: str) -> list[ModelVersion]:
    out: list[ModelVersion] = []
    token: str | None = None
    while True:
        page = versions.list_versions(session, name, _PAGE, token)
        out.extend(page.items)
        token = page.next_page_token
        if not token:
            return out


def _all_models(session: Session) -> list[RegisteredModel]:
    out: list[RegisteredModel] = []
    token: str | None = None
    while True:
        page = models.list_models(session, _PAGE, token)
        out.extend(page.items)
        token = page.next_page_token
        if not token:
            return out


def latest_versions(session: Session, name: str, stages: list[str]) -> list[ModelVersion]:
    """The newest version in each stage (``stages`` empty: in every stage that has one)."""
    wanted = {_STAGES.get(s.lower(), s) for s in stages}
    newest: dict[str, ModelVersion] = {}
    for version in all_versions(session, name):  # newest first
        newest.setdefault(version.tags.get(STAGE_TAG, "None"), version)
    return sorted(
        (v for stage, v in newest.items() if not wanted or stage in wanted),
        key=lambda v: v.number,
    )


def _model_field(model: RegisteredModel, key: str) -> Any:
    attributes = {"name": model.name, "creation_timestamp": model.created_at}
    updated = dict.fromkeys(("last_updated_timestamp", "timestamp"), model.updated_at)
    return field_of(key, attributes | updated, tags=model.tags)


def search_models(session: Session, search: Search) -> tuple[list[RegisteredModel], str | None]:
    """One page of the models MLflow's filter matches (``name = / LIKE / ILIKE``,
    ``tags.<key>``), by name unless ``order_by`` says otherwise."""
    clauses = search.clauses(_MODEL_FILTER)
    order = search.order(_MODEL_ORDER, [("name", False)])
    exact = next((c.value for c in clauses if c.key == "name" and c.op == "="), None)
    if exact is not None:
        found = [models.get_model(session, exact)] if _exists(session, exact) else []
    else:
        found = _all_models(session)
    found = [m for m in found if matches(clauses, lambda k, m=m: _model_field(m, k))]
    return search.page(found, order, _model_field)


def _exists(session: Session, name: str) -> bool:
    try:
        models.model_row(session, name)
    except (InvalidInput, NotFound):  # a malformed name is one no model has
        return False
    return True


def _version_field(version: ModelVersion, key: str) -> Any:
    attributes = {
        "name": version.name,
        "version_number": version.number,
        "run_id": version.run_id,
        "source_path": version.source,
        "model_id": version.tags.get(MODEL_ID_TAG),
    }
    created = dict.fromkeys(("creation_timestamp", "last_updated_timestamp"), version.created_at)
    return field_of(key, attributes | created, tags=version.tags)


def search_versions(session: Session, search: Search) -> tuple[list[ModelVersion], str | None]:
    """One page of the versions MLflow's filter matches (``name``, ``version_number``,
    ``run_id``, ``source_path``, ``tags.<key>``), newest first unless ``order_by`` says."""
    clauses = search.clauses(_VERSION_FILTER)
    order = search.order(_VERSION_ORDER, [("name", False), ("version_number", True)])
    exact = next((c.value for c in clauses if c.key == "name" and c.op == "="), None)
    names = [exact] if exact is not None else [m.name for m in _all_models(session)]
    found = [
        v
        for name in names
        if exact is None or _exists(session, name)
        for v in all_versions(session, name)
        if matches(clauses, lambda k, v=v: _version_field(v, k))
    ]
    return search.page(found, order, _version_field)
