"""The registry's REST routes under ``/api``: models, versions, aliases, promotions,
evaluations and model cards. A version is addressed as ``/models/{name}/versions/{v}`` where
``v`` is a number, an alias or ``latest``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi import Query
from fastapi import status
from fastapi.responses import PlainTextResponse

from opsloop.kernel.identity import current_user
from opsloop.kernel.paging import Page
from opsloop.registry import aliases
from opsloop.registry import cards
from opsloop.registry import evaluations
from opsloop.registry import models
from opsloop.registry import routes
from opsloop.registry import versions
from opsloop.registry.entities import AliasEvent
from opsloop.registry.entities import ModelVersion
from opsloop.registry.entities import ModelVersionCreate
from opsloop.registry.entities import RegisteredModel
from opsloop.registry.evaluations import Evaluation
from opsloop.registry.local import register_version
from opsloop.registry.promotion import PromotionContext
from opsloop.registry.promotion import promote
from opsloop.registry.schemas import AliasMove
from opsloop.registry.schemas import EvaluationCreate
from opsloop.registry.schemas import ModelCreate
from opsloop.registry.schemas import ModelUpdate
from opsloop.registry.schemas import PromotionRequest
from opsloop.registry.schemas import VersionUpdate
from opsloop.tracking.schemas import TagValue
from opsloop.web.deps import Blobs
from opsloop.web.deps import PageQuery
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State
from opsloop.web.deps import WriteSession
from opsloop.web.deps import version_ref

router = APIRouter(tags=["registry"])


@router.get(routes.MODELS.template)
def list_models(session: ReadSession, page: PageQuery) -> Page[RegisteredModel]:
    return models.list_models(session, page.max_results, page.page_token)


@router.post(routes.MODELS.template, status_code=status.HTTP_201_CREATED)
def create_model(body: ModelCreate, session: WriteSession) -> RegisteredModel:
    return models.create_model(
        session, body.name, created_by=current_user(), description=body.description, tags=body.tags
    )


@router.get(routes.MODEL.template)
def get_model(name: str, session: ReadSession) -> RegisteredModel:
    return models.get_model(session, name)


@router.patch(routes.MODEL.template)
def update_model(name: str, body: ModelUpdate, session: WriteSession) -> RegisteredModel:
    return models.update_model(
        session, name, description=body.description, gate_policy=body.gate_policy
    )


@router.delete(routes.MODEL.template, status_code=status.HTTP_204_NO_CONTENT)
def delete_model(name: str, session: WriteSession) -> None:
    """Refused (409) while an alias points at one of its versions."""
    models.delete_model(session, name)


@router.put(routes.MODEL_TAG.template)
def set_model_tag(name: str, key: str, body: TagValue, session: WriteSession) -> RegisteredModel:
    return models.set_model_tag(session, name, key, body.value)


@router.get(routes.VERSIONS.template)
def list_versions(name: str, session: ReadSession, page: PageQuery) -> Page[ModelVersion]:
    """A model's versions, newest first."""
    return versions.list_versions(session, name, page.max_results, page.page_token)


@router.post(routes.VERSIONS.template, status_code=status.HTTP_201_CREATED)
def create_version(
    name: str, body: ModelVersionCreate, session: WriteSession, blobs: Blobs
) -> ModelVersion:
    """Register a package as the model's next version: from a FINISHED run's artifact folder
    (``run_id`` + ``artifact_path``) or from files uploaded through ``/api/blobs``."""
    return register_version(session, blobs, name, body, current_user())


@router.get(routes.VERSION.template)
def get_version(name: str, selector: str, session: ReadSession) -> ModelVersion:
    return versions.get_version(session, version_ref(name, selector))


@router.patch(routes.VERSION.template)
def update_version(
    name: str, selector: str, body: VersionUpdate, session: WriteSession
) -> ModelVersion:
    return versions.update_version(
        session, version_ref(name, selector), description=body.description, card=body.card
    )


@router.delete(routes.VERSION.template, status_code=status.HTTP_204_NO_CONTENT)
def delete_version(name: str, selector: str, session: WriteSession) -> None:
    """Refused (409, naming them) while an alias or a deployment points at the version."""
    versions.delete_version(session, version_ref(name, selector))


@router.get(routes.VERSION_MANIFEST.template)
def get_manifest(name: str, selector: str, session: ReadSession) -> list[tuple[str, str, int]]:
    """The package's files as ``[path, digest, size]``; fetch bytes from ``/api/blobs``."""
    _, manifest = versions.manifest_of(session, version_ref(name, selector))
    return [(e.path, e.digest, e.size) for e in manifest.entries]


@router.put(routes.VERSION_TAG.template)
def set_version_tag(
    name: str, selector: str, key: str, body: TagValue, session: WriteSession
) -> ModelVersion:
    return versions.set_version_tag(session, version_ref(name, selector), key, body.value)


@router.put(routes.ALIAS.template)
def set_alias(name: str, alias: str, body: AliasMove, session: WriteSession) -> ModelVersion:
    """Point an alias at a version without a gate (recorded in the alias history)."""
    return aliases.set_alias(
        session,
        version_ref(name, body.version),
        alias,
        created_by=current_user(),
        reason=body.reason,
    )


@router.delete(routes.ALIAS.template, status_code=status.HTTP_204_NO_CONTENT)
def delete_alias(name: str, alias: str, session: WriteSession) -> None:
    aliases.delete_alias(session, name, alias, created_by=current_user())


@router.get(routes.ALIAS_HISTORY.template)
def alias_history(name: str, session: ReadSession, alias: str | None = None) -> list[AliasEvent]:
    """Every decision about the model's aliases, newest first, with gate verdicts."""
    return aliases.alias_history(session, name, alias)


@router.post(routes.VERSION_PROMOTE.template)
def promote_version(name: str, selector: str, body: PromotionRequest, state: State) -> AliasEvent:
    """Run the gate (the body's policy, else the model's) and move the alias on a pass. The
    verdict, with every number it used, is recorded whether it passed or not."""
    context = PromotionContext(state.store, state.blobs, Path(state.settings.home) / "cache")
    return promote(
        context, version_ref(name, selector), created_by=current_user(), **dict(body)
    ).event


@router.get(routes.VERSION_EVALUATIONS.template)
def list_evaluations(name: str, selector: str, session: ReadSession) -> list[Evaluation]:
    return evaluations.list_evaluations(session, version_ref(name, selector))


@router.get(routes.VERSION_CARD.template, response_model=None)
def get_card(
    name: str,
    selector: str,
    session: ReadSession,
    format: str = Query("json", pattern="^(json|markdown)$"),
) -> dict[str, object] | PlainTextResponse:
    """The model card, built from what the registry knows plus what people wrote."""
    card = cards.build_card(session, version_ref(name, selector))
    if format == "markdown":
        return PlainTextResponse(cards.card_markdown(card), media_type="text/markdown")
    return card


@router.post(routes.EVALUATIONS.template, status_code=status.HTTP_201_CREATED)
def create_evaluation(body: EvaluationCreate, session: WriteSession) -> Evaluation:
    return evaluations.record_evaluation(
        session,
        body.report,
        created_by=current_user(),
        model_ref=body.model_ref,
        dataset_ref=body.dataset_ref,
    )


@router.get(routes.EVALUATION.template)
def get_evaluation(evaluation_id: str, session: ReadSession) -> Evaluation:
    return evaluations.get_evaluation(session, evaluation_id)
