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
from typing import TYPE_CHECKING
from typing import Any

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
    from opsloop.config import Settings
    from opsloop.config import load_settings
    from opsloop.errors import Conflict
    from opsloop.errors import InvalidInput
    from opsloop.errors import NotFound
    from opsloop.errors import OpsloopError
    from opsloop.errors import PermissionDenied
    from opsloop.errors import StoreError
    from opsloop.errors import Unauthenticated
    from opsloop.fluent import ActiveRun
    from opsloop.fluent import active_run
    from opsloop.fluent import end_run
    from opsloop.fluent import flush
    from opsloop.fluent import get_client
    from opsloop.fluent import get_run
    from opsloop.fluent import log_artifact
    from opsloop.fluent import log_artifacts
    from opsloop.fluent import log_batch
    from opsloop.fluent import log_dataframe
    from opsloop.fluent import log_dict
    from opsloop.fluent import log_figure
    from opsloop.fluent import log_metric
    from opsloop.fluent import log_metrics
    from opsloop.fluent import log_param
    from opsloop.fluent import log_params
    from opsloop.fluent import log_text
    from opsloop.fluent import search_runs
    from opsloop.fluent import seed_everything
    from opsloop.fluent import set_experiment
    from opsloop.fluent import set_tag
    from opsloop.fluent import set_tags
    from opsloop.fluent import start_run
    from opsloop.kernel.paging import Page
    from opsloop.monitoring.drift import DriftReport
    from opsloop.monitoring.drift import drift
    from opsloop.traces import observe
    from opsloop.tracking.entities import Artifact
    from opsloop.tracking.entities import Experiment
    from opsloop.tracking.entities import MetricHistory
    from opsloop.tracking.entities import Run
    from opsloop.tracking.entities import RunData
    from opsloop.tracking.entities import RunInfo
    from opsloop.tracking.entities import RunStatus
