"""Every REST path of serving, once: ``api.py`` declares them, ``remote.py`` calls them.

The deployment resources are mounted under ``/api``; the inference protocol endpoints
(``/v1/deployments/{name}/predict``, ``/feedback``, MLflow's scoring protocol at
``/v1/deployments/{name}/invocations``, and on ``opsloop serve`` also ``/invocations``) and
Prometheus ``/metrics`` at the root.
"""

from __future__ import annotations

from opsloop.kernel.routes import Route

__all__ = [
    "BATCH_INFERENCES",
    "DEPLOYMENT",
    "DEPLOYMENTS",
    "EVENTS",
    "FEEDBACK",
    "INVOCATIONS",
    "METRICS",
    "POLICY",
    "PREDICT",
    "PREDICTIONS",
    "PROMOTE",
    "ROLLBACK",
    "ROLLOUT",
    "ROLLOUTS",
    "ROLLOUT_ABORT",
    "ROOT_INVOCATIONS",
]

# -- deployments (under /api) -------------------------------------------------------------------
DEPLOYMENTS = Route("/deployments")
DEPLOYMENT = Route("/deployments/{name}")
POLICY = Route("/deployments/{name}/policy")
PROMOTE = Route("/deployments/{name}/promote")
ROLLBACK = Route("/deployments/{name}/rollback")
EVENTS = Route("/deployments/{name}/events")
PREDICTIONS = Route("/deployments/{name}/predictions")
ROLLOUTS = Route("/deployments/{name}/rollouts")
ROLLOUT = Route("/deployments/{name}/rollout")
ROLLOUT_ABORT = Route("/deployments/{name}/rollout/abort")
BATCH_INFERENCES = Route("/batch-inferences")

# -- inference protocol and metrics (at the root) -----------------------------------------------
PREDICT = Route("/v1/deployments/{name}/predict", mount="")
FEEDBACK = Route("/v1/deployments/{name}/feedback", mount="")
INVOCATIONS = Route("/v1/deployments/{name}/invocations", mount="")
ROOT_INVOCATIONS = Route("/invocations", mount="")  # `opsloop serve`: as `mlflow models serve`
METRICS = Route("/metrics", mount="")
