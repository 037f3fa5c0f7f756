"""The prompt registry's REST paths, written once (under ``/api``): ``api.py`` declares them and
``remote.py`` requests them. A version's ``{selector}`` is its number, a label or ``latest``.
The label rules a label may require live in the evals domain (:mod:`opsloop.llm.evals.routes`).
"""

from __future__ import annotations

from opsloop.kernel.routes import Route

PROMPTS = Route("/prompts")
PROMPT = Route("/prompts/{name}")
VERSIONS = Route("/prompts/{name}/versions")
VERSION = Route("/prompts/{name}/versions/{selector}")
LABEL = Route("/prompts/{name}/labels/{label}")
DIFFS = Route("/prompt-diffs")
RENDERS = Route("/prompt-renders")
