"""MLflow's model registry and MLflow 3's logged models (``/api/2.0/mlflow/...``) over opsloop's
registry, so ``mlflow.register_model``, ``log_model(..., registered_model_name=...)`` and
``MlflowClient``'s registry calls work against ``opsloop server``.

Each route parses MLflow's request, calls a registry service (:mod:`.mlflow_registry`,
:mod:`.mlflow_logged`, or the registry's own services) and answers MLflow's JSON; errors take
MLflow's shape (:mod:`opsloop.web.mlflow`): an unknown model, version or alias is
``RESOURCE_DOES_NOT_EXIST``, a model that exists ``RESOURCE_ALREADY_EXISTS``, a malformed name,
alias, version or filter ``INVALID_PARAMETER_VALUE``. Roles are the server's (reads need
``viewer``, writes ``editor``; moving a protected alias ``maintainer``: see
``governance.policy``). Mounted with :func:`opsloop.web.mlflow.include_mlflow_router`.

What opsloop stores for each MLflow notion, and why, is written in :mod:`.mlflow_registry`
(versions) and :mod:`.mlflow_logged` (logged models). Loading or serving an MLflow model is not
opsloop's: its versions are kept with the ``mlflow`` flavor, which opsloop never unpickles.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi import Query
from pydantic import Field

from opsloop.errors import InvalidInput
from opsloop.kernel.identity import current_user
from opsloop.registry import aliases
from opsloop.registry import mlflow_logged
from opsloop.registry import mlflow_registry
from opsloop.registry import models
from opsloop.registry import versions
from opsloop.registry.mlflow_filters import Search
from opsloop.registry.mlflow_registry import model_json
from opsloop.registry.mlflow_registry import parse_version
from opsloop.registry.mlflow_registry import version_json
from opsloop.tracking.mlflow_protocol import KeyValue
from opsloop.tracking.mlflow_protocol import MlflowRequest
from opsloop.tracking.mlflow_protocol import tag_dict
from opsloop.web.deps import Blobs
from opsloop.web.deps import ReadSession
from opsloop.web.deps import WriteSession

__all__ = ["router"]

# MLflow's protocol, documented by MLflow: its error shape is not opsloop's, so /docs leaves it out
router = APIRouter(tags=["mlflow"], include_in_schema=False)
Json = dict[str, Any]
_REASON = "set through MLflow's API"


# -- requests -------------------------------------------------------------------------------------
class ModelName(MlflowRequest):
    name: str


class CreateModel(ModelName):
    tags: list[KeyValue] | None = None
    description: str | None = None


class RenameModel(ModelName):
    new_name: str


class UpdateModel(ModelName):
    description: str | None = None


class ModelTag(ModelName, KeyValue):
    """A model's name, and the tag's key and value."""


class LatestVersions(ModelName):
    stages: list[str] = Field(default_factory=list)


class SetAlias(ModelName):
    alias: str
    version: str


class AliasRef(ModelName):
    alias: str


class VersionRef(ModelName):
    version: str


class CreateVersion(ModelName):
    source: str = ""
    run_id: str | None = None
    tags: list[KeyValue] | None = None
    description: str | None = None
    model_id: str | None = None


class UpdateVersion(VersionRef):
    description: str | None = None


class VersionTag(VersionRef, KeyValue):
    """A version's model name and number, and the tag's key and value."""


class TransitionStage(VersionRef):
    stage: str
    archive_existing_versions: bool = False


class CreateLoggedModel(MlflowRequest):
    experiment_id: str
    name: str | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    params: list[KeyValue] | None = None
    tags: list[KeyValue] | None = None


class FinalizeLoggedModel(MlflowRequest):
    status: str


class LoggedModelTags(MlflowRequest):
    tags: list[KeyValue] | None = None


class LoggedModelParams(MlflowRequest):
    params: list[KeyValue] | None = None


class OrderBy(MlflowRequest):
    field_name: str
    ascending: bool = True


class SearchLoggedModels(MlflowRequest):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str | None = None
    max_results: int = Field(100, ge=1, le=10_000)
    order_by: list[OrderBy] | None = None
    page_token: str | None = None


class ModelOutput(MlflowRequest):
    model_id: str
    step: int = 0


class LogOutputs(MlflowRequest):
    run_id: str
    models: list[ModelOutput] = Field(default_factory=list)


def _paged(field: str, items: list[Json], token: str | None) -> Json:
    out: Json = {field: items}
    if token:
        out["next_page_token"] = token
    return out


def _ref(name: str, version: str) -> str:
    return f"{name}@{parse_version(version)}"


# -- registered models ----------------------------------------------------------------------------
@router.post("/registered-models/create")
def create_registered_model(body: CreateModel, session: WriteSession) -> Json:
    created = models.create_model(
        session,
        body.name,
        created_by=current_user(),
        description=body.description or None,
        tags=tag_dict(body.tags),
    )
    return {"registered_model": model_json(session, created)}


@router.get("/registered-models/get")
def get_registered_model(session: ReadSession, name: str = Query()) -> Json:
    return {"registered_model": model_json(session, models.get_model(session, name))}


@router.post("/registered-models/rename")
def rename_registered_model(body: RenameModel, session: WriteSession) -> Json:
    renamed = models.rename_model(session, body.name, body.new_name)
    return {"registered_model": model_json(session, renamed)}


@router.patch("/registered-models/update")
def update_registered_model(body: UpdateModel, session: WriteSession) -> Json:
    updated = models.update_model(session, body.name, description=body.description or "")
    return {"registered_model": model_json(session, updated)}


@router.delete("/registered-models/delete")
def delete_registered_model(body: ModelName, session: WriteSession) -> Json:
    mlflow_registry.delete_model(session, body.name)
    return {}


@router.get("/registered-models/search")
def search_registered_models(
    session: ReadSession,
    filter: str | None = Query(None),
    max_results: int = Query(100, ge=1, le=10_000),
    order_by: list[str] = Query([]),
    page_token: str | None = Query(None),
) -> Json:
    search = Search(filter, order_by, max_results, page_token)
    found, token = mlflow_registry.search_models(session, search)
    return _paged("registered_models", [model_json(session, m) for m in found], token)


def _latest(session: Any, name: str, stages: list[str]) -> Json:
    found = mlflow_registry.latest_versions(session, name, stages)
    return {"model_versions": [version_json(v) for v in found]}


@router.post("/registered-models/get-latest-versions")
def get_latest_versions(body: LatestVersions, session: ReadSession) -> Json:
    return _latest(session, body.name, body.stages)


@router.get("/registered-models/get-latest-versions")
def get_latest_versions_by_query(
    session: ReadSession, name: str = Query(), stages: list[str] = Query([])
) -> Json:
    return _latest(session, name, stages)


@router.post("/registered-models/set-tag")
def set_registered_model_tag(body: ModelTag, session: WriteSession) -> Json:
    models.set_model_tag(session, body.name, body.key, body.value)
    return {}


@router.delete("/registered-models/delete-tag")
def delete_registered_model_tag(body: ModelTag, session: WriteSession) -> Json:
    models.delete_model_tag(session, body.name, body.key)
    return {}


@router.post("/registered-models/alias")
def set_registered_model_alias(body: SetAlias, session: WriteSession) -> Json:
    ref = _ref(body.name, body.version)
    aliases.set_alias(session, ref, body.alias, created_by=current_user(), reason=_REASON)
    return {}


@router.delete("/registered-models/alias")
def delete_registered_model_alias(body: AliasRef, session: WriteSession) -> Json:
    aliases.delete_alias(session, body.name, body.alias, created_by=current_user())
    return {}


@router.get("/registered-models/alias")
def get_model_version_by_alias(
    session: ReadSession, name: str = Query(), alias: str = Query()
) -> Json:
    if alias.isdigit() or alias == "latest":  # opsloop's refs read these as selectors
        raise InvalidInput(f"{alias!r} is not an alias: pass an alias such as 'champion'")
    return {"model_version": version_json(versions.get_version(session, f"{name}@{alias}"))}


# -- model versions -------------------------------------------------------------------------------
@router.post("/model-versions/create")
def create_model_version(body: CreateVersion, session: WriteSession, blobs: Blobs) -> Json:
    created = mlflow_registry.create_model_version(
        session,
        blobs,
        body.name,
        body.source,
        model_id=body.model_id,
        description=body.description,
        tags=tag_dict(body.tags),
    )
    return {"model_version": version_json(created)}


@router.get("/model-versions/get")
def get_model_version(session: ReadSession, name: str = Query(), version: str = Query()) -> Json:
    return {"model_version": version_json(versions.get_version(session, _ref(name, version)))}


@router.patch("/model-versions/update")
def update_model_version(body: UpdateVersion, session: WriteSession) -> Json:
    updated = versions.update_version(
        session, _ref(body.name, body.version), description=body.description or ""
    )
    return {"model_version": version_json(updated)}


@router.delete("/model-versions/delete")
def delete_model_version(body: VersionRef, session: WriteSession) -> Json:
    mlflow_registry.delete_version(session, body.name, parse_version(body.version))
    return {}


@router.get("/model-versions/search")
def search_model_versions(
    session: ReadSession,
    filter: str | None = Query(None),
    max_results: int = Query(10_000, ge=1, le=200_000),
    order_by: list[str] = Query([]),
    page_token: str | None = Query(None),
) -> Json:
    search = Search(filter, order_by, max_results, page_token)
    found, token = mlflow_registry.search_versions(session, search)
    return _paged("model_versions", [version_json(v) for v in found], token)


@router.get("/model-versions/get-download-uri")
def get_model_version_download_uri(
    session: ReadSession, name: str = Query(), version: str = Query()
) -> Json:
    found = versions.get_version(session, _ref(name, version))
    return {"artifact_uri": mlflow_registry.download_uri(session, found)}


@router.post("/model-versions/set-tag")
def set_model_version_tag(body: VersionTag, session: WriteSession) -> Json:
    versions.set_version_tag(session, _ref(body.name, body.version), body.key, body.value)
    return {}


@router.delete("/model-versions/delete-tag")
def delete_model_version_tag(body: VersionTag, session: WriteSession) -> Json:
    versions.delete_version_tag(session, _ref(body.name, body.version), body.key)
    return {}


@router.post("/model-versions/transition-stage")
def transition_model_version_stage(body: TransitionStage, session: WriteSession) -> Json:
    moved = mlflow_registry.transition_stage(
        session,
        body.name,
        parse_version(body.version),
        body.stage,
        body.archive_existing_versions,
    )
    return {"model_version": version_json(moved)}


# -- logged models (MLflow 3) ---------------------------------------------------------------------
@router.post("/logged-models")
def create_logged_model(body: CreateLoggedModel, session: WriteSession) -> Json:
    created = mlflow_logged.create_logged_model(
        session,
        body.experiment_id,
        name=body.name,
        source_run_id=body.source_run_id,
        model_type=body.model_type,
        tags=tag_dict(body.tags),
        params=tag_dict(body.params),
    )
    return {"model": mlflow_logged.logged_model_json(created)}


@router.post("/logged-models/search")
def search_logged_models(body: SearchLoggedModels, session: ReadSession) -> Json:
    order = [f"{o.field_name} {'ASC' if o.ascending else 'DESC'}" for o in body.order_by or []]
    search = Search(body.filter, order, body.max_results, body.page_token)
    found, token = mlflow_logged.search_logged_models(session, body.experiment_ids, search)
    return _paged("models", [mlflow_logged.logged_model_json(m) for m in found], token)


@router.get("/logged-models/{model_id}")
def get_logged_model(model_id: str, session: ReadSession) -> Json:
    found = mlflow_logged.get_logged_model(session, model_id)
    return {"model": mlflow_logged.logged_model_json(found)}


@router.patch("/logged-models/{model_id}")
def finalize_logged_model(model_id: str, body: FinalizeLoggedModel, session: WriteSession) -> Json:
    done = mlflow_logged.finalize_logged_model(session, model_id, body.status)
    return {"model": mlflow_logged.logged_model_json(done)}


@router.patch("/logged-models/{model_id}/tags")
def set_logged_model_tags(model_id: str, body: LoggedModelTags, session: WriteSession) -> Json:
    mlflow_logged.set_logged_model_tags(session, model_id, tag_dict(body.tags))
    return {}


@router.delete("/logged-models/{model_id}/tags/{tag_key:path}")
def delete_logged_model_tag(model_id: str, tag_key: str, session: WriteSession) -> Json:
    mlflow_logged.delete_logged_model_tag(session, model_id, tag_key)
    return {}


@router.post("/logged-models/{model_id}/params")
def log_logged_model_params(model_id: str, body: LoggedModelParams, session: WriteSession) -> Json:
    mlflow_logged.set_logged_model_params(session, model_id, tag_dict(body.params))
    return {}


@router.post("/runs/outputs")
def log_outputs(body: LogOutputs, session: WriteSession) -> Json:
    """A run's outputs: the logged models it produced (``log_model`` links them)."""
    mlflow_logged.log_outputs(session, body.run_id, [(m.model_id, m.step) for m in body.models])
    return {}
