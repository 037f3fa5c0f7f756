"""The label gate as a FastAPI dependency, shared by the REST routes and the pages.

Routes that may move labels depend on :func:`label_gate`, which the app overrides with the
evals domain's gate (``app.dependency_overrides[label_gate] = ...``): prompts may not import
evals. It lives apart from ``api.py`` so that the pages (``views.py``, a sibling that may not
import ``api.py``) save versions past the same gate; ``api.label_gate`` is this very function.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from opsloop.errors import OpsloopError
from opsloop.llm.prompts.ports import LabelGate

__all__ = ["Gate", "label_gate"]


def label_gate() -> LabelGate:
    """The placeholder the app overrides; reached only by an app that never wired the gate,
    which must not move labels unchecked."""
    raise OpsloopError(
        "no label gate is configured: the app must set "
        "app.dependency_overrides[opsloop.llm.prompts.api.label_gate] to the evals domain's gate"
    )


Gate = Annotated[LabelGate, Depends(label_gate)]
