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

MODEL_ARTIFACT = "model/model.txt"


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


def _log_training(
    run: ActiveRun, arguments: dict[str, Any], booster: Any, log_models: bool
) -> None:
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
    if log_models:
        with attempt("save the model"):
            log_bytes(run, lambda path: booster.save_model(str(path)), "model.txt", "model")


def _with_callback(run: ActiveRun, callbacks: list[Any]) -> list[Any]:
    # First in the list: LightGBM numbers callbacks without an ``order`` by their position
    # from the end, so the user's keep the numbers they had without us.
    return [_Recorder(run), *callbacks]


_MODULES = ("lightgbm.engine", "lightgbm", "lightgbm.sklearn")  # each holds its own `train`
autolog = BoosterAutolog("lightgbm", _MODULES, _with_callback, _log_training).autolog


def load_model(run_id: str, *, client: Any = None) -> Any:
    """The booster autolog stored on a run, as a ``lightgbm.Booster`` (from its text: no
    pickle). Predict with ``booster.predict(X)``."""
    import lightgbm

    from opsloop.fluent import get_client

    data = (client or get_client()).read_artifact(run_id, MODEL_ARTIFACT)
    return lightgbm.Booster(model_str=data.decode("utf-8"))
