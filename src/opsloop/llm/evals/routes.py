"""The evals domain's REST paths, written once (under ``/api``): ``api.py`` declares them and
``remote.py`` requests them. Label rules hang under the prompt they guard, but belong to evals.
"""

from __future__ import annotations

from opsloop.kernel.routes import Route

RUNS = Route("/eval-runs")
RUN = Route("/eval-runs/{run_id}")
LABEL_RULES = Route("/prompts/{name}/label-rules")
LABEL_RULE = Route("/prompts/{name}/label-rules/{label}")
