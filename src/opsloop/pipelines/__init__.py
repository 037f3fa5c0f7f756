"""Pipelines: plain Python functions as tracked, cached, reproducible steps.

``from opsloop.pipelines import step, pipeline, tune``; see :mod:`opsloop.pipelines.dsl` and
:mod:`opsloop.pipelines.tuning`.
"""

from opsloop.pipelines.dsl import pipeline, step
from opsloop.pipelines.tuning import tune

__all__ = ["pipeline", "step", "tune"]
