"""The label gate as a FastAPI dependency, shared by the REST routes and the pages.

Routes that may move labels depend on :func:`label_gate`, which answers the gate the app
keeps as ``app.state.label_gate`` (the evals domain's: prompts may not import evals), not
through ``app.dependency_overrides``: any override makes FastAPI read every dependency's
signature again on every request of every route. It lives apart from ``api.py`` so that the
pages (``views.py``, a sibling that may not import ``api.py``) save versions past the same
gate; ``api.label_gate`` is this very function.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi import Request

from opsloop.errors import OpsloopError
from opsloop.llm.prompts.ports import LabelGate

__all__ = ["Gate", "label_gate"]


def label_gate(request: Request) -> LabelGate:
    """The app's gate; an app that never set one must not move labels unchecked."""
    gate: LabelGate | None = getattr(request.app.state, "label_gate", None)
    if gate is None:
        raise OpsloopError(
            "no label gate is configured: the app must set app.state.label_gate "
            "to the evals domain's gate"
        )
    return gate


Gate = Annotated[LabelGate, Depends(label_gate)]
