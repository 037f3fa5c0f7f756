"""Autologging for scikit-learn: ``opsloop.sklearn.autolog()`` and every ``fit`` is tracked.

Each top-level ``fit`` (not the fits a meta-estimator makes inside it) logs the estimator's
params, training metrics computed on the data it was fitted on, and the fitted model as a
skops file (``model/model.skops``), which loads without running pickled code. With no active
run, ``fit`` starts one named after the estimator and ends it.
"""

from __future__ import annotations

import functools
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

__all__ = ["autolog", "load_model", "training_metrics"]

_originals: dict[type, Any] = {}
_state = threading.local()
_config = {"log_models": True, "log_training_metrics": True}
MODEL_ARTIFACT = "model/model.skops"


def training_metrics(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    """Standard metrics of a fitted classifier or regressor on (X, y), prefixed ``training_``."""
    from sklearn import metrics
    from sklearn.base import is_classifier, is_regressor

    if y is None:
        return {}
    out: dict[str, float] = {}
    if is_classifier(estimator):
        predicted = estimator.predict(X)
        out["accuracy"] = metrics.accuracy_score(y, predicted)
        for name in ("precision", "recall", "f1"):
            scorer = getattr(metrics, f"{name}_score")
            out[name] = scorer(y, predicted, average="weighted", zero_division=0)
        if hasattr(estimator, "predict_proba"):
            proba = estimator.predict_proba(X)
            out["log_loss"] = metrics.log_loss(y, proba, labels=estimator.classes_)
            if len(estimator.classes_) == 2:
                out["roc_auc"] = metrics.roc_auc_score(y, proba[:, 1])
    elif is_regressor(estimator):
        predicted = estimator.predict(X)
        mse = metrics.mean_squared_error(y, predicted)
        out.update(mse=mse, rmse=mse**0.5, mae=metrics.mean_absolute_error(y, predicted))
        out["r2"] = metrics.r2_score(y, predicted)
    return {f"training_{k}": float(v) for k, v in out.items()}


def _log_fit(estimator: Any, X: Any, y: Any) -> None:
    from opsloop import fluent
    from opsloop.errors import Conflict

    active = fluent.active_run()
    assert active is not None
    client, run_id = active.client, active.run_id
    params = {
        k: repr(v) if not isinstance(v, str | int | float | bool | type(None)) else v
        for k, v in estimator.get_params(deep=False).items()
    }
    try:
        client.log_params(run_id, params)
    except Conflict as exc:
        warnings.warn(
            f"opsloop autolog: params not logged, the run already has others: {exc}", stacklevel=3
        )
    client.set_tags(
        run_id,
        {
            "opsloop.autolog.estimator": (
                f"{type(estimator).__module__}.{type(estimator).__qualname__}"
            )
        },
    )
    if _config["log_training_metrics"]:
        client.log_metrics(run_id, training_metrics(estimator, X, y))
    if _config["log_models"]:
        import skops.io

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.skops"
            skops.io.dump(estimator, path)
            client.log_artifact(run_id, path, "model")


def _wrap(original: Any) -> Any:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_state, "inside", False):
            return original(self, *args, **kwargs)
        from opsloop import fluent

        _state.inside = True
        started = None
        try:
            if fluent.active_run() is None:
                started = fluent.start_run(run_name=type(self).__name__)
            result = original(self, *args, **kwargs)
            X = args[0] if args else kwargs.get("X")
            y = args[1] if len(args) > 1 else kwargs.get("y")
            _log_fit(self, X, y)
        except BaseException:
            if started is not None:
                fluent.end_run("FAILED")
            raise
        finally:
            _state.inside = False
        if started is not None:
            fluent.end_run()
        return result

    fit._opsloop_original = original  # type: ignore[attr-defined]
    return fit


def autolog(
    *, log_models: bool = True, log_training_metrics: bool = True, disable: bool = False
) -> None:
    """Patch every scikit-learn estimator's ``fit`` to log params, metrics and the model.

    Args:
        log_models: Store the fitted model as ``model/model.skops``.
        log_training_metrics: Log accuracy/precision/recall/f1/log_loss/roc_auc (classifiers) or
            mse/rmse/mae/r2 (regressors) on the training data.
        disable: Undo the patching.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.utils import all_estimators

    _config.update(log_models=log_models, log_training_metrics=log_training_metrics)
    if disable:
        for cls, original in _originals.items():
            cls.fit = original
        _originals.clear()
        return
    classes = {cls for _, cls in all_estimators()} | {Pipeline}
    for cls in classes:
        if "fit" in cls.__dict__ and cls not in _originals:
            _originals[cls] = cls.__dict__["fit"]
            cls.fit = _wrap(cls.__dict__["fit"])


def load_model(run_id: str, *, trusted: list[str] | None = None, client: Any = None) -> Any:
    """Load a model autolog stored on a run, with skops' safe loader.

    Types skops does not consider safe by default must be listed in ``trusted``.
    """
    import skops.io

    from opsloop.fluent import get_client

    client = client or get_client()
    data = client.read_artifact(run_id, MODEL_ARTIFACT)
    untrusted = skops.io.get_untrusted_types(data=data)
    return skops.io.loads(data, trusted=[t for t in untrusted if t in (trusted or [])] or None)
