"""Data versions' web pages: datasets, a dataset's versions, and a version (table schema with
column statistics, validation report with failing rows, files, and lineage both ways).

Pages read the same services as ``/api/datasets``; nothing here reads the data itself (the
statistics were recorded when the version was added), so a page answers in milliseconds
whatever the size of the version.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi import Request
from fastapi.responses import Response

from opsloop.data import versions
from opsloop.data.tables import DatasetRow
from opsloop.errors import NotFound
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State
from opsloop.web.search import find_by_name
from opsloop.web.shell import UiDomain

__all__ = ["UI", "router"]

router = APIRouter(include_in_schema=False)
FILES_SHOWN = 200


UI = UiDomain(
    key="data",
    title="Data",
    href="/datasets",
    package="opsloop.data",
    find=find_by_name("dataset", DatasetRow.name, "/datasets"),
)


@router.get("/datasets")
def datasets_page(request: Request, session: ReadSession) -> Response:
    listed = versions.list_datasets(session, 10_000, None).items
    return UI.page(request, "datasets.html", "Data", datasets=listed)


@router.get("/datasets/{name}")
def dataset_page(request: Request, name: str, session: ReadSession) -> Response:
    dataset = versions.get_dataset(session, name)
    listed = versions.list_versions(session, name, 10_000, None).items
    return UI.subpage(request, "dataset.html", name, dataset=dataset, versions=listed)


@router.get("/datasets/{name}/versions/{selector}")
def version_page(
    request: Request, name: str, selector: str, session: ReadSession, state: State
) -> Response:
    version, manifest = versions.get_manifest(session, f"{name}@{selector}")
    try:
        validation = versions.get_validation(session, version.ref)
    except NotFound:
        validation = None
    return UI.subpage(
        request,
        "version.html",
        version.ref,
        (name, f"/datasets/{name}"),
        version=version,
        files=manifest.entries[:FILES_SHOWN],
        file_total=len(manifest),
        validation=validation,
        graph=state.lineage.lineage(session, "data", version.ref),
    )


@router.get("/datasets/{name}/versions/{selector}/dedup")
def dedup_page(request: Request, name: str, selector: str, state: State) -> Response:
    """The report of a version ``opsloop data dedup`` made: its clusters, each with the row
    kept and the rows dropped with their similarity (read from the blob store, not the data)."""
    from opsloop.data.duplicates.service import dedup_report

    report = dedup_report(state.store, state.blobs, f"{name}@{selector}")
    return UI.subpage(
        request,
        "dedup.html",
        f"{report['output']} dedup report",
        (name, f"/datasets/{name}"),
        (report["output"], f"/datasets/{name}/versions/{selector}"),
        report=report,
    )
