"""Pipelines: plain Python functions as tracked, cached, reproducible steps.

``from opsloop.pipelines import step, pipeline, tune, DataVersion``; see
:mod:`opsloop.pipelines.dsl`, :mod:`opsloop.pipelines.tuning` and
:mod:`opsloop.pipelines.data_inputs` (``tune`` and ``DataVersion`` are imported when first
used: a pipeline that does not tune or read data versions does not pay for them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from opsloop.pipelines.dsl import pipeline
from opsloop.pipelines.dsl import step

__all__ = ["DataVersion", "pipeline", "step", "tune"]


def __getattr__(name: str) -> Any:
    if name == "tune":
        from opsloop.pipelines.tuning import tune

        return tune
    if name == "DataVersion":
        from opsloop.data.sdk import DataVersion

        return DataVersion
    raise AttributeError(f"module 'opsloop.pipelines' has no attribute {name!r}")


if TYPE_CHECKING:
    from opsloop.data.sdk import DataVersion
    from opsloop.pipelines.tuning import tune
