"""Autologging for LightGBM: ``opsloop.lightgbm.autolog()`` and every training is tracked.

``lightgbm.train`` (and so ``LGBMClassifier.fit`` / ``LGBMRegressor.fit``..., which call it)
logs its params and ``num_boost_round``, every validation metric at each iteration through a
callback (``valid_0-binary_logloss`` at step = iteration), ``best_iteration`` after early
stopping, and the booster in LightGBM's own text format (``model/model.txt``): trees written
as text, never a pickle, so loading it runs no code from the store. :func:`load_model` reads it
back as a ``lightgbm.Booster``.

Inside a fit that ``opsloop.sklearn`` is logging (a search over an ``LGBMClassifier``, a
pipeline ending in one), training runs unlogged: the outer call owns the run. A logging failure
is one warning per kind and never stops the training (see :mod:`opsloop.autolog`).
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any

from opsloop.autolog.guard import attempt, busy, enclosing_estimators, reset_warnings
from opsloop.autolog.patch import Patches
from opsloop.autolog.runs import clean_params, finite_metrics, log_bytes, logged_call

if TYPE_CHECKING:
    from opsloop.fluent import ActiveRun

__all__ = ["MODEL_ARTIFACT", "autolog", "load_model"]

MODEL_ARTIFACT = "model/model.txt"
_patches = Patches()
_config = {"log_models": True}
_MODULES = ("lightgbm.engine", "lightgbm", "lightgbm.sklearn")  # each holds its own `train`


class _Recorder:
    """A LightGBM callback queuing each iteration's evaluation results on a run.

    ``order = 21`` runs it after ``record_evaluation`` (20) and before ``early_stopping`` (30),
    which raises to stop: the last iteration is logged too. It never raises itself. (An instance
    attribute: LightGBM gives a callback without one in its ``__dict__`` a number of its own.)
    """

    def __init__(self, run: ActiveRun) -> None:
        self.run = run
        self.order = 21
        self.before_iteration = False

    def __call__(self, env: Any) -> None:
        with attempt("log an iteration's metrics"):
            values = {f"{r[0]}-{r[1]}": r[2] for r in env.evaluation_result_list or ()}
            points = finite_metrics(values)
            if points:
                self.run.client.log_metrics(self.run.run_id, points, step=env.iteration)


def _log_training(run: ActiveRun, arguments: dict[str, Any], booster: Any) -> None:
    client, run_id = run.client, run.run_id
    params = dict(arguments.get("params") or {})
    params.setdefault("num_boost_round", arguments.get("num_boost_round", 100))
    with attempt("log params"):
        client.log_params(run_id, clean_params(params))
    with attempt("set the estimator tag"):
        client.set_tags(run_id, {"opsloop.autolog.estimator": "lightgbm.Booster"})
    with attempt("log the best iteration"):
        best = getattr(booster, "best_iteration", 0)
        if best and best > 0:
            client.log_metrics(run_id, {"best_iteration": float(best)})
    if _config["log_models"]:
        with attempt("save the model"):
            log_bytes(run, lambda path: booster.save_model(str(path)), "model.txt", "model")


def _wrap_train(original: Any) -> Any:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def train(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:  # the user's own mistake: let LightGBM say so, as it would have
            return original(*args, **kwargs)
        arguments = dict(bound.arguments)

        def fit(run: ActiveRun | None) -> Any:
            if run is None:
                return original(*args, **kwargs)
            # First in the list: LightGBM numbers callbacks without an ``order`` by their
            # position from the end, so the user's keep the numbers they had without us.
            bound.arguments["callbacks"] = [_Recorder(run), *(arguments.get("callbacks") or ())]
            return original(*bound.args, **bound.kwargs)

        # Called by its own scikit-learn wrapper (``fit`` of one estimator up the stack), the
        # run is named after it; a second estimator further up (a search, a pipeline) owns it.
        outer = [] if busy() else enclosing_estimators()
        return logged_call(
            type(outer[0]).__name__ if outer else "lightgbm",
            fit,
            lambda run, booster: _log_training(run, arguments, booster),
            inner=len(outer) > 1,
        )

    return train


def autolog(*, log_models: bool = True, disable: bool = False) -> None:
    """Patch ``lightgbm.train`` to log params, per-iteration metrics and the booster.

    Args:
        log_models: Store the trained booster as ``model/model.txt``.
        disable: Undo the patching.
    """
    import importlib

    _config.update(log_models=log_models)
    if disable:
        _patches.undo()
        return
    reset_warnings()
    _patches.patch_all([importlib.import_module(m) for m in _MODULES], "train", _wrap_train)


def load_model(run_id: str, *, client: Any = None) -> Any:
    """The booster autolog stored on a run, as a ``lightgbm.Booster`` (from its text: no
    pickle). Predict with ``booster.predict(X)``."""
    import lightgbm

    from opsloop.fluent import get_client

    data = (client or get_client()).read_artifact(run_id, MODEL_ARTIFACT)
    return lightgbm.Booster(model_str=data.decode("utf-8"))
