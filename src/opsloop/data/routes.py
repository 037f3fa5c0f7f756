"""The data domain's REST paths, written once (under ``/api``): ``api.py`` declares them and
``remote.py`` requests them. A version's ``{selector}`` is its number, an alias or ``latest``.
Blob bytes move through the blob routes (:mod:`opsloop.store.blob_routes`).
"""

from __future__ import annotations

from opsloop.kernel.routes import Route

DATASETS = Route("/datasets")
DATASET = Route("/datasets/{name}")
VERSIONS = Route("/datasets/{name}/versions")
VERSION = Route("/datasets/{name}/versions/{selector}")
VERSION_MANIFEST = Route("/datasets/{name}/versions/{selector}/manifest")
VERSION_LINEAGE = Route("/datasets/{name}/versions/{selector}/lineage")
VERSION_TAG = Route("/datasets/{name}/versions/{selector}/tags/{key:path}")
VERSION_VALIDATION = Route("/datasets/{name}/versions/{selector}/validation")
ALIAS = Route("/datasets/{name}/aliases/{alias}")
DIFFS = Route("/dataset-diffs")
RUN_DATASETS = Route("/runs/{run_id}/datasets")
DEDUPS = Route("/dataset-dedups")
VERSION_DEDUP_REPORT = Route("/datasets/{name}/versions/{selector}/dedup-report")
OVERLAPS = Route("/dataset-overlaps")
