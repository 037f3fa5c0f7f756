"""Pipelines: plain Python functions as tracked, cached, reproducible steps.

``from opsloop.pipelines import step, pipeline``; see :mod:`opsloop.pipelines.dsl`.
"""

from opsloop.pipelines.dsl import pipeline, step

__all__ = ["pipeline", "step"]
