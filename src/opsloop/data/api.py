"""The data domain's REST routes under ``/api``: datasets, versions, aliases, lineage.

Blob transfer uses the shared blob routes (``/api/blobs``); these routes only record and
answer questions about versions. A version is addressed as ``/datasets/{name}/versions/{v}``
where ``v`` is a number, an alias or ``latest``.
"""

from __future__ import annotations

from typing import Annotated
from typing import Any

from fastapi import APIRouter
from fastapi import Depends
from fastapi import Request
from fastapi import Response
from fastapi import status

from opsloop.data import compare
from opsloop.data import links
from opsloop.data import routes
from opsloop.data import versions
from opsloop.data.duplicates import service as duplicates
from opsloop.data.duplicates.entities import DedupRequest
from opsloop.data.duplicates.entities import DedupResult
from opsloop.data.duplicates.entities import OverlapRequest
from opsloop.data.duplicates.ports import Embedder
from opsloop.data.entities import DataDiff
from opsloop.data.entities import Dataset
from opsloop.data.entities import DatasetVersion
from opsloop.data.entities import LineageLink
from opsloop.data.entities import ManifestFiles
from opsloop.data.entities import VersionCreate
from opsloop.data.schemas import AliasSet
from opsloop.data.schemas import LineageCreate
from opsloop.data.schemas import ValidationRecord
from opsloop.data.schemas import VersionCreated
from opsloop.kernel.identity import current_user
from opsloop.kernel.paging import Page
from opsloop.tracking.schemas import TagValue
from opsloop.web.deps import PageQuery
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State
from opsloop.web.deps import WriteSession
from opsloop.web.deps import version_ref

router = APIRouter(tags=["data"])


@router.get(routes.DATASETS.template)
def list_datasets(session: ReadSession, page: PageQuery) -> Page[Dataset]:
    return versions.list_datasets(session, page.max_results, page.page_token)


@router.get(routes.DATASET.template)
def get_dataset(name: str, session: ReadSession) -> Dataset:
    return versions.get_dataset(session, name)


@router.get(routes.VERSIONS.template)
def list_versions(name: str, session: ReadSession, page: PageQuery) -> Page[DatasetVersion]:
    """A dataset's versions, newest first."""
    return versions.list_versions(session, name, page.max_results, page.page_token)


@router.post(routes.VERSIONS.template, status_code=status.HTTP_201_CREATED)
def create_version(
    name: str, body: VersionCreate, session: WriteSession, response: Response
) -> VersionCreated:
    """Register a manifest as the dataset's next version (200 with the existing one if the
    dataset already has these exact files). Upload missing blobs through ``/api/blobs``."""
    version, created = versions.register_version(session, name, body, current_user())
    if not created:
        response.status_code = status.HTTP_200_OK
    return VersionCreated(version=version, created=created)


@router.get(routes.VERSION.template)
def get_version(name: str, selector: str, session: ReadSession) -> DatasetVersion:
    return versions.get_version(session, version_ref(name, selector))


@router.get(routes.VERSION_MANIFEST.template)
def get_manifest(name: str, selector: str, session: ReadSession) -> ManifestFiles:
    """Every file of the version as ``[path, digest, size]``; fetch bytes from ``/api/blobs``."""
    version, manifest = versions.get_manifest(session, version_ref(name, selector))
    return ManifestFiles(
        version=version, files=[(e.path, e.digest, e.size) for e in manifest.entries]
    )


@router.get(routes.VERSION_LINEAGE.template)
def get_lineage(name: str, selector: str, session: ReadSession, state: State) -> list[LineageLink]:
    """Everything one step from this version, upstream (the run that produced it, the model
    version and input of a batch, the traces of a feedback export) and downstream (runs that
    read it, evaluations, batches), each named."""
    return links.version_lineage(session, version_ref(name, selector), state.lineage)


@router.put(routes.VERSION_TAG.template)
def set_tag(
    name: str, selector: str, key: str, body: TagValue, session: WriteSession
) -> DatasetVersion:
    return versions.set_version_tag(session, version_ref(name, selector), key, body.value)


@router.put(routes.VERSION_VALIDATION.template)
def record_validation(
    name: str, selector: str, body: ValidationRecord, session: WriteSession
) -> DatasetVersion:
    """Store a validation report; the version is marked passed or failed."""
    return versions.record_validation(
        session, version_ref(name, selector), body.report, body.passed
    )


@router.get(routes.VERSION_VALIDATION.template)
def get_validation(name: str, selector: str, session: ReadSession) -> dict[str, Any]:
    return versions.get_validation(session, version_ref(name, selector))


@router.put(routes.ALIAS.template)
def set_alias(name: str, alias: str, body: AliasSet, session: WriteSession) -> DatasetVersion:
    """Point an alias at a version (moving it if it pointed elsewhere)."""
    return versions.set_alias(session, version_ref(name, body.version), alias)


@router.delete(routes.ALIAS.template, status_code=status.HTTP_204_NO_CONTENT)
def delete_alias(name: str, alias: str, session: WriteSession) -> None:
    versions.delete_alias(session, name, alias)


@router.get(routes.DIFFS.template)
def diff_versions(old: str, new: str, session: ReadSession) -> DataDiff:
    """Files added, removed and modified from ``old`` to ``new`` (refs such as ``iris@1``);
    for tables also the schema, row count and column statistics that changed."""
    return compare.diff_versions(session, old, new)


@router.post(routes.RUN_DATASETS.template, status_code=status.HTTP_201_CREATED)
def log_run_dataset(run_id: str, body: LineageCreate, session: WriteSession) -> DatasetVersion:
    """Record that the run consumed (input) or produced (output) a dataset version."""
    return versions.log_lineage(session, run_id, body.ref, body.relation)


def _app_embedder(request: Request) -> Embedder | None:
    """The sentence embedder the app hands in (``app.state.embedder``: the MiniLM one lives in
    ``llm``, above this floor); none without it."""
    embedder: Embedder | None = getattr(request.app.state, "embedder", None)
    return embedder


@router.post(routes.DEDUPS.template, status_code=status.HTTP_201_CREATED)
def dedup_version(
    body: DedupRequest,
    state: State,
    response: Response,
    embedder: Annotated[Embedder | None, Depends(_app_embedder)],
) -> DedupResult:
    """Drop exact and near-duplicate rows of a table version's text column into the next
    version (lineage ``deduplicated``, report kept with it); 200 and no version when no row
    was a duplicate. Runs here, where the blobs are."""
    result = duplicates.dedup_version(
        state.store, state.blobs, body, current_user(), embedder=embedder
    )
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return result


@router.get(routes.VERSION_DEDUP_REPORT.template)
def get_dedup_report(name: str, selector: str, state: State) -> dict[str, Any]:
    """The report of a version ``dedup`` made: rows removed per method and the clusters."""
    return duplicates.dedup_report(state.store, state.blobs, version_ref(name, selector))


@router.post(routes.OVERLAPS.template)
def overlap(body: OverlapRequest, state: State) -> dict[str, Any]:
    """Share of the eval version's rows with an exact or near duplicate in the train version;
    ``passed`` is false above ``max_rate`` (the answer is 200 either way: a verdict)."""
    return duplicates.overlap_versions(state.store, state.blobs, body)
