"""Autologging for scikit-learn: ``opsloop.sklearn.autolog()`` and every ``fit`` is tracked.

Each top-level ``fit`` logs the estimator's params, training metrics computed on the data it
was fitted on, and the fitted model as a skops file (``model/model.skops``), which loads without
running pickled code. With no active run, ``fit`` starts one named after the estimator and ends
it. A search (``GridSearchCV``, ``RandomizedSearchCV``) also logs ``best_*`` params,
``best_cv_score`` and one child run per candidate (``max_tuning_runs``, best first);
``cross_validate`` / ``cross_val_score`` log one run with the mean and spread of each score.

Why the fits made *inside* a meta-estimator are never runs: the user made one call and keeps
one model, so they get one run. A search's folds and refit, ``cross_validate``'s folds and a
pipeline's or column transformer's steps are means to that model, not models the user keeps;
as runs they would bury it among ``candidates x folds`` others, spend an environment capture
and a model upload each, and they carry transient state mid-search (scikit-learn >= 1.9 hangs a
callback context with cycles on each fold's clone, which is what made skops recurse forever).
The candidates' scores, the part worth comparing, come from ``cv_results_`` instead.

Autologging never changes what the user's code does (see :mod:`opsloop.autolog`): a failure
while logging is one :class:`~opsloop.autolog.guard.AutologWarning` per kind, and ``fit``
returns what it returned without autologging. The scikit-learn wrappers of XGBoost and
LightGBM (``XGBClassifier``, ``LGBMClassifier``...) are left to ``opsloop.xgboost`` /
``opsloop.lightgbm``, which log their per-iteration metrics and native model files; inside a
search or a pipeline logged here they run unlogged, so nothing is logged twice.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING
from typing import Any

from opsloop.autolog.guard import attempt
from opsloop.autolog.guard import busy
from opsloop.autolog.guard import enclosing_estimators
from opsloop.autolog.guard import owning
from opsloop.autolog.guard import reset_warnings
from opsloop.autolog.patch import Patches
from opsloop.autolog.runs import clean_params
from opsloop.autolog.runs import finite_metrics
from opsloop.autolog.runs import log_bytes
from opsloop.autolog.runs import logged_call
from opsloop.autolog.search import cv_summary
from opsloop.autolog.search import log_search

if TYPE_CHECKING:
    from opsloop.fluent import ActiveRun

__all__ = ["autolog", "load_model", "training_metrics"]

MODEL_ARTIFACT = "model/model.skops"
_patches = Patches()
_config: dict[str, Any] = {"log_models": True, "log_training_metrics": True, "max_tuning_runs": 5}
# The private helpers that fit one fold: cross_val_predict, learning_curve, validation_curve and
# a cross_validate imported by name before autolog() all reach fold fits only through these.
_FOLD_WORKERS = {
    "sklearn.model_selection._validation": ("_fit_and_score", "_fit_and_predict"),
    "sklearn.model_selection._search": ("_fit_and_score",),
}


def training_metrics(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    """Standard metrics of a fitted classifier or regressor on (X, y), prefixed ``training_``."""
    from sklearn import metrics
    from sklearn.base import is_classifier
    from sklearn.base import is_regressor

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


def _log_fit(run: ActiveRun, estimator: Any, X: Any, y: Any) -> None:
    """Params, tag, training metrics, the search's children and the model, each on its own:
    one that fails (a warning) does not keep the others from being logged."""
    from sklearn.model_selection._search import BaseSearchCV

    client, run_id = run.client, run.run_id
    with attempt("log params"):
        client.log_params(run_id, clean_params(estimator.get_params(deep=False)))
    with attempt("set the estimator tag"):
        kind = f"{type(estimator).__module__}.{type(estimator).__qualname__}"
        client.set_tags(run_id, {"opsloop.autolog.estimator": kind})
    if _config["log_training_metrics"]:
        with attempt("log training metrics"):
            client.log_metrics(run_id, finite_metrics(training_metrics(estimator, X, y)))
    if isinstance(estimator, BaseSearchCV) and hasattr(estimator, "cv_results_"):
        log_search(run, estimator, _config["max_tuning_runs"])
    if _config["log_models"]:
        from opsloop.registry.sklearn_imports import skops_io  # without the walk that imports torch

        with attempt("save the model"):
            skops = skops_io()
            log_bytes(run, lambda path: skops.dump(estimator, path), "model.skops", "model")


def _wrap_fit(original: Any) -> Any:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        X = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        return logged_call(
            type(self).__name__,
            lambda _run: original(self, *args, **kwargs),
            lambda run, _result: _log_fit(run, self, X, y),
            inner=not busy() and bool(enclosing_estimators(exclude=self)),
        )

    return fit


def _wrap_cross_validate(original: Any) -> Any:
    @functools.wraps(original)
    def cross_validate(estimator: Any, *args: Any, **kwargs: Any) -> Any:
        def log(run: ActiveRun, result: Any) -> None:
            params = {**estimator.get_params(deep=False), "cv": kwargs.get("cv", 5)}
            with attempt("log params"):
                run.client.log_params(run.run_id, clean_params(params))
            with attempt("log cross-validation scores"):
                run.client.log_metrics(run.run_id, cv_summary(result))
            kind = f"{type(estimator).__module__}.{type(estimator).__qualname__}"
            with attempt("set the estimator tag"):
                run.client.set_tags(
                    run.run_id, {"opsloop.autolog.estimator": kind, "opsloop.autolog.cv": "1"}
                )

        return logged_call(
            f"cross_validate-{type(estimator).__name__}",
            lambda _run: original(estimator, *args, **kwargs),
            log,
        )

    return cross_validate


def _wrap_quiet(original: Any) -> Any:
    """A fold worker: what it fits is never logged, in whichever thread joblib runs it."""

    @functools.wraps(original)
    def worker(*args: Any, **kwargs: Any) -> Any:
        with owning():
            return original(*args, **kwargs)

    return worker


def _fit_owners() -> set[type]:
    """The scikit-learn classes that define the ``fit`` of some public estimator: each
    estimator's own class, or the base it inherits ``fit`` from (``BaseSearchCV`` for the
    searches, which is why they were not patched before and their folds each became a run)."""
    from sklearn.pipeline import Pipeline
    from sklearn.utils import all_estimators

    owners: set[type] = set()
    for cls in {c for _, c in all_estimators()} | {Pipeline}:
        owner = next((c for c in cls.__mro__ if "fit" in c.__dict__), None)
        if owner is not None and owner.__module__.startswith("sklearn."):
            owners.add(owner)
    return owners


def autolog(
    *,
    log_models: bool = True,
    log_training_metrics: bool = True,
    max_tuning_runs: int | None = 5,
    disable: bool = False,
) -> None:
    """Patch every scikit-learn estimator's ``fit`` to log params, metrics and the model.

    Args:
        log_models: Store the fitted model as ``model/model.skops``.
        log_training_metrics: Log accuracy/precision/recall/f1/log_loss/roc_auc (classifiers) or
            mse/rmse/mae/r2 (regressors) on the training data.
        max_tuning_runs: Child runs a search logs, best-ranked candidates first; ``None`` for
            all of them, 0 for none (the parent still has ``best_*`` and ``best_cv_score``).
        disable: Undo the patching.

    Call it before ``from sklearn.model_selection import cross_validate``: a name imported
    earlier still points at the unpatched function (its folds stay unlogged, but no parent run
    is made for it). ``cross_val_score`` works either way.
    """
    import importlib

    import sklearn.model_selection as model_selection
    from sklearn.model_selection import _validation

    _config.update(
        log_models=log_models,
        log_training_metrics=log_training_metrics,
        max_tuning_runs=max_tuning_runs,
    )
    if disable:
        _patches.undo()
        return
    reset_warnings()
    for owner in _fit_owners():
        _patches.patch(owner, "fit", _wrap_fit)
    _patches.patch_all([_validation, model_selection], "cross_validate", _wrap_cross_validate)
    for module_name, names in _FOLD_WORKERS.items():
        module = importlib.import_module(module_name)
        for name in names:
            if hasattr(module, name):
                _patches.patch(module, name, _wrap_quiet)


def load_model(run_id: str, *, trusted: list[str] | None = None, client: Any = None) -> Any:
    """Load a model autolog stored on a run, with skops' safe loader.

    Types from scikit-learn, NumPy and SciPy are library code and load as they are (a search's
    scorer and splitter included); any other type must be listed in ``trusted``, or loading
    is refused (``PermissionDenied`` naming them), as for a registered model.
    """
    import tempfile
    from pathlib import Path

    from opsloop.fluent import get_client
    from opsloop.registry.flavors import get_flavor

    client = client or get_client()
    data = client.read_artifact(run_id, MODEL_ARTIFACT)
    with tempfile.TemporaryDirectory(prefix="opsloop-model-") as tmp:
        path = Path(tmp) / "model.skops"
        path.write_bytes(data)
        return get_flavor("sklearn").load(path, list(trusted or []))
