"""The pipelines domain's REST paths, written once: :mod:`opsloop.pipelines.api` declares them
and :class:`~opsloop.pipelines.remote.RemotePipelineBackend` and
:class:`~opsloop.pipelines.remote.RemoteTriggerBackend` call them (under ``/api``)."""

from __future__ import annotations

from opsloop.kernel.routes import Route

__all__ = [
    "PIPELINE_RUN",
    "PIPELINE_RUNS",
    "PIPELINE_RUN_CANCEL",
    "PIPELINE_RUN_LOGS",
    "PIPELINE_RUN_REPRODUCE",
    "PIPELINE_RUN_REPRODUCTION",
    "PIPELINE_RUN_RESUME",
    "TRIGGER",
    "TRIGGERS",
    "TRIGGER_FIRE",
    "TRIGGER_FIRINGS",
    "TUNING",
    "TUNING_RESULT",
]

PIPELINE_RUNS = Route("/pipelines/runs")  # POST starts a run, GET lists the latest
PIPELINE_RUN = Route("/pipelines/runs/{run_id}")
PIPELINE_RUN_RESUME = Route("/pipelines/runs/{run_id}/resume")
PIPELINE_RUN_REPRODUCE = Route("/pipelines/runs/{run_id}/reproduce")
PIPELINE_RUN_REPRODUCTION = Route("/pipelines/runs/{run_id}/reproduction")
PIPELINE_RUN_CANCEL = Route("/pipelines/runs/{run_id}/cancel")
PIPELINE_RUN_LOGS = Route("/pipelines/runs/{run_id}/logs")
TUNING = Route("/tuning")
TUNING_RESULT = Route("/tuning/{run_id}")
TRIGGERS = Route("/triggers")
TRIGGER = Route("/triggers/{name}")
TRIGGER_FIRE = Route("/triggers/{name}/fire")
TRIGGER_FIRINGS = Route("/triggers/{name}/firings")
