"""XGBoost and LightGBM autologging: params, each iteration's eval metrics at step = iteration,
the booster in its native format (JSON / text, no pickle) that loads back and predicts
identically, one run per user call when scikit-learn autologging is on too, and the user's own
errors and callbacks left as they were. Real boosters trained on sklearn's datasets."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pytest
import xgboost
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV
from sklearn.model_selection import train_test_split

import opsloop
import opsloop.lightgbm
import opsloop.sklearn
import opsloop.xgboost
from opsloop.autolog.guard import AutologWarning


@pytest.fixture
def data() -> tuple[Any, ...]:
    X, y = load_breast_cancer(return_X_y=True)
    return tuple(train_test_split(X, y, test_size=0.3, random_state=0))


@pytest.fixture(autouse=True)
def _all_off() -> Iterator[None]:
    """Whatever a test turned on is off afterwards, and the libraries' own ``train`` is back
    in every module that holds it."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield
    opsloop.sklearn.autolog(disable=True)
    opsloop.xgboost.autolog(disable=True)
    opsloop.lightgbm.autolog(disable=True)
    assert xgboost.train is xgboost.training.train is xgboost.sklearn.train
    assert lightgbm.train is lightgbm.engine.train is lightgbm.sklearn.train
    assert not hasattr(xgboost.train, "_opsloop_original")


def _only_run(experiment: str = "Default") -> Any:
    (run,) = opsloop.search_runs(experiment).items
    return run


def _history(run: Any, key: str) -> tuple[list[int], list[float]]:
    points = opsloop.get_client().get_metric_history(run.info.run_id, key)
    return list(points.steps), list(points.values)


def test_xgboost_train_logs_each_iteration_and_a_json_booster(data: tuple[Any, ...]) -> None:
    X_train, X_valid, y_train, y_valid = data
    dtrain, dvalid = xgboost.DMatrix(X_train, y_train), xgboost.DMatrix(X_valid, y_valid)
    params = {
        "objective": "binary:logistic",
        "max_depth": 3,
        "eval_metric": ["logloss", "error@0.6"],
    }
    opsloop.xgboost.autolog()
    opsloop.set_experiment("xgb")
    seen: dict[str, Any] = {}
    booster = xgboost.train(
        params, dtrain, 12, evals=[(dtrain, "train"), (dvalid, "valid")],
        evals_result=seen, verbose_eval=False,
    )  # fmt: skip
    run = _only_run("xgb")
    assert run.info.run_name == "xgboost" and run.info.status == "FINISHED"
    assert run.data.params["max_depth"] == "3" and run.data.params["num_boost_round"] == "12"
    steps, values = _history(run, "valid-logloss")
    assert steps == list(range(12))
    assert values == pytest.approx(seen["valid"]["logloss"])  # the user's own record, intact
    assert "valid-error_0.6" in run.data.metrics  # '@' is not a key character: replaced

    loaded = opsloop.xgboost.load_model(run.info.run_id)
    assert opsloop.get_client().read_artifact(run.info.run_id, "model/model.json")[:1] == b"{"
    assert np.array_equal(loaded.predict(dvalid), booster.predict(dvalid))


def test_xgb_classifier_with_sklearn_autolog_on_is_one_run(data: tuple[Any, ...]) -> None:
    X_train, X_valid, y_train, y_valid = data

    def fit() -> Any:
        model = xgboost.XGBClassifier(n_estimators=15, max_depth=3, early_stopping_rounds=4)
        return model.fit(X_train, y_train, eval_set=[(X_valid, y_valid)], verbose=False)

    reference = fit()
    opsloop.sklearn.autolog()
    opsloop.xgboost.autolog()
    model = fit()
    assert np.array_equal(model.predict_proba(X_valid), reference.predict_proba(X_valid))
    run = _only_run()  # not also a LabelEncoder run, nor a second XGBClassifier one
    assert run.info.run_name == "XGBClassifier"
    steps, _ = _history(run, "validation_0-logloss")
    assert steps == list(range(len(steps))) and len(steps) > model.best_iteration
    assert run.data.metrics["best_iteration"] == model.best_iteration

    loaded = opsloop.xgboost.load_model(run.info.run_id)
    rounds = (0, model.best_iteration + 1)
    predicted = loaded.predict(xgboost.DMatrix(X_valid), iteration_range=rounds)
    assert np.array_equal(predicted, model.predict_proba(X_valid)[:, 1])


def test_a_search_over_boosters_is_one_parent_and_no_training_runs(
    data: tuple[Any, ...],
) -> None:
    X_train, _, y_train, _ = data
    opsloop.sklearn.autolog(max_tuning_runs=2)
    opsloop.xgboost.autolog()
    opsloop.lightgbm.autolog()
    opsloop.set_experiment("search")
    for estimator in (
        xgboost.XGBClassifier(n_estimators=5),
        lightgbm.LGBMClassifier(n_estimators=5, verbose=-1),
    ):
        GridSearchCV(estimator, {"max_depth": [2, 3, 4]}, cv=2).fit(X_train, y_train)
    runs = opsloop.search_runs("search").items
    parents = [r for r in runs if r.info.parent_run_id is None]
    assert [r.info.run_name for r in parents] == ["GridSearchCV"] * 2
    assert len(runs) == 6  # 2 parents, 2 children each: no fold or refit trainings


def test_lightgbm_train_logs_each_iteration_and_a_text_booster(data: tuple[Any, ...]) -> None:
    X_train, X_valid, y_train, y_valid = data
    train_set = lightgbm.Dataset(X_train, y_train)
    valid_set = lightgbm.Dataset(X_valid, y_valid, reference=train_set)
    params = {"objective": "binary", "num_leaves": 7, "metric": ["binary_logloss", "auc"]}
    params.update(verbose=-1, learning_rate=0.5)  # overfits soon: early stopping does stop
    opsloop.lightgbm.autolog()
    seen: dict[str, Any] = {}
    booster = lightgbm.train(
        params, train_set, num_boost_round=200, valid_sets=[valid_set], valid_names=["valid"],
        callbacks=[lightgbm.record_evaluation(seen), lightgbm.early_stopping(3, verbose=False)],
    )  # fmt: skip
    assert booster.current_iteration() < 200
    run = _only_run()
    assert run.info.run_name == "lightgbm" and run.data.params["num_leaves"] == "7"
    steps, values = _history(run, "valid-binary_logloss")
    assert values == pytest.approx(seen["valid"]["binary_logloss"])  # every iteration, the
    assert steps == list(range(len(values)))  # stopping one included
    assert run.data.metrics["best_iteration"] == booster.best_iteration

    loaded = opsloop.lightgbm.load_model(run.info.run_id)
    assert np.array_equal(loaded.predict(X_valid), booster.predict(X_valid))


def test_lgbm_classifier_with_sklearn_autolog_on_is_one_run(data: tuple[Any, ...]) -> None:
    X_train, X_valid, y_train, y_valid = data

    def fit() -> Any:
        model = lightgbm.LGBMClassifier(n_estimators=10, num_leaves=7, verbose=-1)
        return model.fit(X_train, y_train, eval_X=X_valid, eval_y=y_valid)

    reference = fit()
    opsloop.sklearn.autolog()
    opsloop.lightgbm.autolog()
    model = fit()
    assert np.array_equal(model.predict_proba(X_valid), reference.predict_proba(X_valid))
    run = _only_run()  # LGBMClassifier.fit fits a LabelEncoder: not a run of its own
    assert run.info.run_name == "LGBMClassifier"
    assert _history(run, "valid_0-binary_logloss")[0] == list(range(10))
    loaded = opsloop.lightgbm.load_model(run.info.run_id)
    assert np.array_equal(loaded.predict(X_valid), model.predict_proba(X_valid)[:, 1])


def test_the_users_training_error_propagates_and_fails_the_run(data: tuple[Any, ...]) -> None:
    X_train, _, y_train, _ = data
    opsloop.xgboost.autolog()
    with pytest.raises(xgboost.core.XGBoostError):
        xgboost.train({"objective": "no-such-objective"}, xgboost.DMatrix(X_train, y_train), 2)
    assert _only_run().info.status == "FAILED"


def test_an_unusable_store_warns_once_and_training_succeeds(
    data: tuple[Any, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    X_train, X_valid, y_train, _ = data
    home = tmp_path / "a-file"
    home.write_text("not a folder")
    monkeypatch.setenv("OPSLOOP_HOME", str(home))
    reference = lightgbm.train({"verbose": -1}, lightgbm.Dataset(X_train, y_train), 5)
    opsloop.lightgbm.autolog()
    opsloop.xgboost.autolog()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        boosters = [
            lightgbm.train({"verbose": -1}, lightgbm.Dataset(X_train, y_train), 5) for _ in range(2)
        ]
        xgboost.train({}, xgboost.DMatrix(X_train, y_train), 3)
    messages = [str(w.message) for w in caught if issubclass(w.category, AutologWarning)]
    assert len(messages) == 1 and "start a run" in messages[0], messages
    assert all(np.array_equal(b.predict(X_valid), reference.predict(X_valid)) for b in boosters)
