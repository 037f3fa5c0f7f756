"""opsloop: one self-hosted platform for the whole life of ML and LLM models.

The SDK is MLflow-familiar::

    import opsloop

    opsloop.set_experiment("churn")
    with opsloop.start_run(run_name="baseline"):
        opsloop.log_params({"lr": 0.01, "depth": 6})
        for step in range(100):
            opsloop.log_metric("loss", 1 / (step + 1), step=step)

Names resolve lazily so that ``import opsloop`` stays fast (no SQLAlchemy, httpx or pydantic
until a call needs them).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from opsloop import fluent as _fluent  # light: imports nothing heavy until called
from opsloop.kernel import __version__

_LAZY: dict[str, str] = {
    "Client": "opsloop.client",
    "Settings": "opsloop.config",
    "load_settings": "opsloop.config",
    "OpsloopError": "opsloop.errors",
    "InvalidInput": "opsloop.errors",
    "NotFound": "opsloop.errors",
    "Conflict": "opsloop.errors",
    "Unauthenticated": "opsloop.errors",
    "PermissionDenied": "opsloop.errors",
    "StoreError": "opsloop.errors",
    "Experiment": "opsloop.tracking.entities",
    "Run": "opsloop.tracking.entities",
    "RunInfo": "opsloop.tracking.entities",
    "RunData": "opsloop.tracking.entities",
    "RunStatus": "opsloop.tracking.entities",
    "MetricHistory": "opsloop.tracking.entities",
    "Artifact": "opsloop.tracking.entities",
    "Page": "opsloop.kernel.paging",
    "observe": "opsloop.traces",
    "drift": "opsloop.monitoring.drift",
    "DriftReport": "opsloop.monitoring.drift",
    **{name: "opsloop.fluent" for name in _fluent.__all__},
}

__all__ = sorted([*_LAZY, "__version__"])
del _fluent


_SUBPACKAGES = {
    "data",
    "models",
    "prompts",
    "traces",
}  # ``opsloop.data.add(...)`` with no import of opsloop.data


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"opsloop.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'opsloop' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from opsloop.client import Client
    from opsloop.config import Settings, load_settings
    from opsloop.errors import (
        Conflict,
        InvalidInput,
        NotFound,
        OpsloopError,
        PermissionDenied,
        StoreError,
        Unauthenticated,
    )
    from opsloop.fluent import (
        ActiveRun,
        active_run,
        end_run,
        flush,
        get_client,
        get_run,
        log_artifact,
        log_artifacts,
        log_batch,
        log_dataframe,
        log_dict,
        log_figure,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        search_runs,
        seed_everything,
        set_experiment,
        set_tag,
        set_tags,
        start_run,
    )
    from opsloop.kernel.paging import Page
    from opsloop.monitoring.drift import DriftReport, drift
    from opsloop.traces import observe
    from opsloop.tracking.entities import (
        Artifact,
        Experiment,
        MetricHistory,
        Run,
        RunData,
        RunInfo,
        RunStatus,
    )
