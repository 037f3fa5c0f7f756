"""A PyTorch Lightning logger: ``Trainer(..., logger=OpsloopLogger())``.

Lightning hands a logger the hyperparameters (``save_hyperparameters()``, the datamodule's)
and every ``self.log(...)`` the module makes, at the trainer's global step; this one writes
them to an opsloop run: params (nested dicts flattened as ``optimizer.lr``) and metrics at
step = global step. With no active run, one named ``run_name`` (or "lightning") is started on
first use and ended by Lightning's ``finalize``: FINISHED after a clean fit, FAILED when the
fit raised (Lightning finalizes its loggers with "failed" then). Inside ``with
opsloop.start_run():`` the run is yours and stays open. A logging failure is one warning per
kind and never stops training (see :mod:`opsloop.autolog`).

``import opsloop.lightning`` imports neither Lightning nor torch: the class is built on first
access to ``OpsloopLogger``. ``pip install lightning`` (``lightning.pytorch``, or the older
``pytorch_lightning`` package).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    OpsloopLogger: type  # built on first access, by __getattr__ below

__all__ = ["OpsloopLogger"]


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _lightning() -> tuple[type, Any]:
    """Lightning's logger base class and its ``rank_zero_only`` (only the main process logs)."""
    try:
        from lightning.pytorch.loggers.logger import Logger
        from lightning.pytorch.utilities import rank_zero_only
    except ImportError:  # the older package name
        from pytorch_lightning.loggers.logger import Logger  # type: ignore[no-redef]
        from pytorch_lightning.utilities import rank_zero_only  # type: ignore[no-redef]
    return Logger, rank_zero_only


@functools.cache
def _build() -> type:
    from opsloop.autolog.guard import attempt
    from opsloop.autolog.runs import OwnedRun
    from opsloop.autolog.runs import clean_params
    from opsloop.autolog.runs import finite_metrics

    base, rank_zero_only = _lightning()

    class OpsloopLogger(base):  # type: ignore[misc, valid-type]
        """Lightning's params and metrics, logged to an opsloop run."""

        def __init__(self, run_name: str | None = None) -> None:
            super().__init__()
            self.run_name = run_name or "lightning"
            self._owned = OwnedRun()

        @property
        def name(self) -> str:
            return "opsloop"

        @property
        def version(self) -> str:
            run = self.experiment
            return run.run_id if run is not None else ""

        @property
        def experiment(self) -> Any:
            """The run logged to (the active one, or one started here on first use)."""
            return self._owned.open(self.run_name)

        @rank_zero_only  # type: ignore[misc]
        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            run = self.experiment
            if run is None:
                return
            with attempt("log params"):
                values = params if isinstance(params, Mapping) else vars(params)
                run.client.log_params(run.run_id, clean_params(_flatten(values)))

        @rank_zero_only  # type: ignore[misc]
        def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
            run = self.experiment
            if run is None:
                return
            with attempt("log the trainer's metrics"):
                points = finite_metrics({k: float(v) for k, v in metrics.items()})
                if points:
                    run.client.log_metrics(run.run_id, points, step=int(step or 0))

        @rank_zero_only  # type: ignore[misc]
        def finalize(self, status: str) -> None:
            self._owned.close(failed=status == "failed")

    return OpsloopLogger


def __getattr__(name: str) -> Any:
    if name != "OpsloopLogger":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _build()  # built once, on first access
