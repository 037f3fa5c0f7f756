"""Tracking's REST paths, written once (under ``/api``): ``api.py`` declares them and
``remote.py`` requests them. The blob routes that ``api.py`` also declares have their paths in
:mod:`opsloop.store.blob_routes`, where the store's HTTP client can see them too.
"""

from __future__ import annotations

from opsloop.kernel.routes import Route

# -- experiments ----------------------------------------------------------------------------------
EXPERIMENTS = Route("/experiments")
EXPERIMENT_BY_NAME = Route("/experiments/by-name/{name:path}")
EXPERIMENT = Route("/experiments/{experiment_id}")
EXPERIMENT_RESTORE = Route("/experiments/{experiment_id}/restore")
EXPERIMENT_TAG = Route("/experiments/{experiment_id}/tags/{key:path}")

# -- runs -----------------------------------------------------------------------------------------
RUNS = Route("/runs")
RUNS_SEARCH = Route("/runs/search")
RUN = Route("/runs/{run_id}")
RUN_RESTORE = Route("/runs/{run_id}/restore")
RUN_BATCH = Route("/runs/{run_id}/batch")
RUN_TAG = Route("/runs/{run_id}/tags/{key:path}")
RUN_METRICS = Route("/runs/{run_id}/metrics")
RUN_METRIC_HISTORY = Route("/runs/{run_id}/metrics/{key:path}/history")

# -- artifacts ------------------------------------------------------------------------------------
RUN_ARTIFACTS = Route("/runs/{run_id}/artifacts")
RUN_ARTIFACT_CONTENT = Route("/runs/{run_id}/artifacts/content/{path:path}")
