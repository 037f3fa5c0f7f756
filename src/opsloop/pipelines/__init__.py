"""Pipelines: plain Python functions as tracked, cached, reproducible steps.

``from opsloop.pipelines import step, pipeline, tune``; see :mod:`opsloop.pipelines.dsl` and
:mod:`opsloop.pipelines.tuning` (imported when ``tune`` is first used: a pipeline that does
not tune does not pay for it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opsloop.pipelines.dsl import pipeline, step

__all__ = ["pipeline", "step", "tune"]


def __getattr__(name: str) -> Any:
    if name == "tune":
        from opsloop.pipelines.tuning import tune

        return tune
    raise AttributeError(f"module 'opsloop.pipelines' has no attribute {name!r}")


if TYPE_CHECKING:
    from opsloop.pipelines.tuning import tune
