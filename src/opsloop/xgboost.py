"""Autologging for XGBoost: ``opsloop.xgboost.autolog()`` and every training is tracked.

``xgboost.train`` (and so ``XGBClassifier.fit`` / ``XGBRegressor.fit``..., which call it) logs
its params and ``num_boost_round``, every evaluation metric at each iteration through a
``TrainingCallback`` (``validation_0-logloss`` at step = iteration), ``best_iteration`` /
``best_score`` after early stopping, and the booster in XGBoost's own JSON format
(``model/model.json``): a document of trees, never a pickle, so loading it runs no code from the
store. :func:`load_model` reads it back as an ``xgboost.Booster``.

Inside a fit that ``opsloop.sklearn`` is logging (a search over an ``XGBClassifier``, a pipeline
ending in one), training runs unlogged: the outer call owns the run. A logging failure is one
warning per kind and never stops the training (see :mod:`opsloop.autolog`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from opsloop.autolog.boosters import BoosterAutolog
from opsloop.autolog.guard import attempt
from opsloop.autolog.runs import clean_params
from opsloop.autolog.runs import finite_metrics
from opsloop.autolog.runs import log_bytes

if TYPE_CHECKING:
    from opsloop.fluent import ActiveRun

__all__ = ["MODEL_ARTIFACT", "autolog", "load_model"]

MODEL_ARTIFACT = "model/model.json"


def _recorder(run: ActiveRun) -> Any:
    """A ``TrainingCallback`` queuing each iteration's latest evaluation results on ``run``
    (the client buffers them: microseconds per point). It never stops the training."""
    import xgboost

    class _Recorder(xgboost.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            with attempt("log an iteration's metrics"):
                values = {
                    f"{data}-{metric}": history[-1]
                    for data, metrics in evals_log.items()
                    for metric, history in metrics.items()
                    if history
                }
                points = finite_metrics(
                    {k: v[0] if isinstance(v, tuple) else v for k, v in values.items()}
                )
                if points:
                    run.client.log_metrics(run.run_id, points, step=epoch)
            return False

    return _Recorder()


def _log_training(
    run: ActiveRun, arguments: dict[str, Any], booster: Any, log_models: bool
) -> None:
    client, run_id = run.client, run.run_id
    params = dict(arguments.get("params") or {})
    params["num_boost_round"] = arguments.get("num_boost_round", 10)
    if arguments.get("early_stopping_rounds") is not None:
        params["early_stopping_rounds"] = arguments["early_stopping_rounds"]
    with attempt("log params"):
        client.log_params(run_id, clean_params(params))
    with attempt("set the estimator tag"):
        client.set_tags(run_id, {"opsloop.autolog.estimator": "xgboost.Booster"})
    with attempt("log the best iteration"):
        best = {k: getattr(booster, k, None) for k in ("best_iteration", "best_score")}
        if best["best_iteration"] is not None:
            client.log_metrics(run_id, finite_metrics(best))
    if log_models:
        with attempt("save the model"):
            log_bytes(run, lambda path: booster.save_model(str(path)), "model.json", "model")


def _with_callback(run: ActiveRun, callbacks: list[Any]) -> list[Any] | None:
    recorder = None
    with attempt("attach the metrics callback"):
        recorder = _recorder(run)
    return None if recorder is None else [*callbacks, recorder]


_MODULES = ("xgboost.training", "xgboost", "xgboost.sklearn")  # each holds its own `train`
autolog = BoosterAutolog("xgboost", _MODULES, _with_callback, _log_training).autolog


def load_model(run_id: str, *, client: Any = None) -> Any:
    """The booster autolog stored on a run, as an ``xgboost.Booster`` (from its JSON: no
    pickle). Predict with ``booster.predict(xgboost.DMatrix(X))``."""
    import xgboost

    from opsloop.fluent import get_client

    data = (client or get_client()).read_artifact(run_id, MODEL_ARTIFACT)
    booster = xgboost.Booster()
    booster.load_model(bytearray(data))
    return booster
