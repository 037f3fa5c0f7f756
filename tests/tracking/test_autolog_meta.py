"""scikit-learn autologging of meta-estimators, and the promise that it never changes what the
user's code does: one parent run per search with capped child runs, one run per
``cross_validate`` / pipeline / column transformer, no fold runs, and a broken logging path
that warns once while the fit still succeeds. Real estimators on sklearn's datasets."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.datasets import load_diabetes
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.model_selection import RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import opsloop
import opsloop.sklearn
from opsloop.autolog.guard import AutologWarning


@pytest.fixture
def autolog() -> Iterator[Callable[..., None]]:
    """Turn autologging on (with the given options); always off again after the test, and
    checked to have put every original ``fit`` back. BLAS on one thread: these are tiny fits,
    and a loaded machine's thread contention made them 10x slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield opsloop.sklearn.autolog
    opsloop.sklearn.autolog(disable=True)
    assert not hasattr(LogisticRegression.fit, "_opsloop_original")
    assert not hasattr(GridSearchCV.fit, "_opsloop_original")


def _runs(experiment: str) -> list[Any]:
    return list(opsloop.search_runs(experiment).items)


def _fit_twice(make: Callable[[], Any], fit: Callable[[Any], Any], on: Callable[[], None]) -> Any:
    """Fit a fresh estimator without autolog, then another with it; the second must return the
    very object it was called on and predict exactly as the first."""
    reference = fit(make())
    on()
    estimator = make()
    assert fit(estimator) is estimator
    return reference, estimator


def _autolog_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, AutologWarning)]


def test_grid_search_is_one_parent_with_the_best_ranked_children(autolog: Any) -> None:
    X, y = load_iris(return_X_y=True)
    opsloop.set_experiment("grid")
    reference, search = _fit_twice(
        lambda: GridSearchCV(LogisticRegression(max_iter=1000), {"C": [0.01, 0.1, 1, 10]}, cv=3),
        lambda s: s.fit(X, y),
        lambda: autolog(max_tuning_runs=2),
    )
    assert (search.predict(X) == reference.predict(X)).all()
    assert search.best_params_ == reference.best_params_

    runs = _runs("grid")
    parents = [r for r in runs if r.info.parent_run_id is None]
    assert len(runs) == 3 and len(parents) == 1  # no run per fold, nor for the refit
    parent = parents[0]
    assert parent.info.run_name == "GridSearchCV" and parent.info.status == "FINISHED"
    assert parent.data.params["best_C"] == str(search.best_params_["C"])
    assert parent.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert parent.data.tags["opsloop.autolog.tuning_runs_logged"] == "2"

    results = search.cv_results_
    best_two = list(np.argsort(results["rank_test_score"], kind="stable")[:2])
    children = {int(r.data.tags["opsloop.autolog.candidate"]): r for r in runs if r is not parent}
    assert sorted(children) == sorted(int(i) for i in best_two)
    for index, child in children.items():
        assert child.info.parent_run_id == parent.info.run_id
        assert child.data.params == {"C": str(results["params"][index]["C"])}
        assert child.data.metrics["mean_test_score"] == pytest.approx(
            results["mean_test_score"][index]
        )
        assert "std_test_score" in child.data.metrics

    loaded = opsloop.sklearn.load_model(parent.info.run_id)
    assert type(loaded) is GridSearchCV
    assert (loaded.predict(X) == search.predict(X)).all()


def test_randomized_search_over_a_pipeline_logs_every_candidate_and_no_step(
    autolog: Any,
) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    opsloop.set_experiment("random")

    def make() -> RandomizedSearchCV:
        pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        grid = {"logisticregression__C": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]}
        return RandomizedSearchCV(pipe, grid, n_iter=4, cv=2, random_state=0)

    reference, search = _fit_twice(
        make, lambda s: s.fit(X, y), lambda: autolog(max_tuning_runs=None)
    )
    assert (search.predict_proba(X) == reference.predict_proba(X)).all()
    runs = _runs("random")
    assert sorted(r.info.run_name.split("-")[0] for r in runs) == ["RandomizedSearchCV"] * 5
    parent = next(r for r in runs if r.info.parent_run_id is None)
    assert "best_logisticregression__C" in parent.data.params
    children = [r for r in runs if r.info.parent_run_id == parent.info.run_id]
    assert len(children) == 4
    assert all(set(c.data.params) == {"logisticregression__C"} for c in children)


def test_cross_validate_and_cross_val_score_are_one_run_each_even_on_threads(
    autolog: Any,
) -> None:
    import joblib
    from sklearn import model_selection

    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000)
    expected = model_selection.cross_val_score(model, X, y, cv=4)
    autolog()
    opsloop.set_experiment("cv")
    with joblib.parallel_backend("threading", n_jobs=2):  # folds fit on other threads
        scores = model_selection.cross_val_score(model, X, y, cv=4)
        result = model_selection.cross_validate(model, X, y, cv=3, return_train_score=True)
    assert (scores == expected).all()
    runs = _runs("cv")
    assert len(runs) == 2 and all(r.info.parent_run_id is None for r in runs)
    assert {r.info.run_name for r in runs} == {"cross_validate-LogisticRegression"}
    by_cv = {r.data.params["cv"]: r for r in runs}
    assert by_cv["4"].data.metrics["mean_test_score"] == pytest.approx(expected.mean())
    assert by_cv["3"].data.metrics["std_train_score"] == pytest.approx(result["train_score"].std())


def test_pipeline_and_column_transformer_are_one_run_each(autolog: Any) -> None:
    X, y = load_diabetes(return_X_y=True)

    def make() -> Any:
        columns = ColumnTransformer(
            [("scaled", StandardScaler(), [0, 2, 3]), ("rest", "passthrough", [1, 4, 5])]
        )
        return make_pipeline(columns, Ridge(alpha=0.5))

    reference, pipe = _fit_twice(make, lambda p: p.fit(X, y), autolog)
    assert (pipe.predict(X) == reference.predict(X)).all()
    opsloop.set_experiment("Default")
    runs = _runs("Default")
    assert [r.info.run_name for r in runs] == ["Pipeline"]
    assert runs[0].data.metrics["training_r2"] > 0.4
    alone = ColumnTransformer([("scaled", StandardScaler(), [0, 1])]).fit(X)
    names = sorted(r.info.run_name for r in _runs("Default"))
    assert names == ["ColumnTransformer", "Pipeline"] and alone.transform(X).shape == (442, 2)


class _Ensemble(BaseEstimator):
    """A user's own meta-estimator: scikit-learn's autolog does not patch it, and the fits it
    makes inside are its own business, not runs."""

    def fit(self, X: Any, y: Any) -> _Ensemble:
        self.parts_ = [LogisticRegression(C=c, max_iter=1000).fit(X, y) for c in (0.1, 1.0)]
        return self


def test_fits_inside_another_librarys_estimator_are_not_runs(autolog: Any) -> None:
    X, y = load_iris(return_X_y=True)
    autolog()
    opsloop.set_experiment("ensemble")
    _Ensemble().fit(X, y)
    assert _runs("ensemble") == []
    LogisticRegression(max_iter=1000).fit(X, y)  # while a plain call still is one
    assert len(_runs("ensemble")) == 1


def test_an_unusable_store_warns_once_and_every_fit_succeeds(
    autolog: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = load_iris(return_X_y=True)
    not_a_folder = tmp_path / "home-file"
    not_a_folder.write_text("a file where the home folder should be")
    monkeypatch.setenv("OPSLOOP_HOME", str(not_a_folder))
    make = lambda: GridSearchCV(LogisticRegression(max_iter=1000), {"C": [0.1, 1]}, cv=2)  # noqa: E731
    reference = make().fit(X, y)
    autolog()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        searches = [make(), make()]
        fitted = [s.fit(X, y) for s in searches]
    assert fitted == searches
    assert all((s.predict(X) == reference.predict(X)).all() for s in fitted)
    messages = _autolog_warnings(caught)
    assert len(messages) == 1 and "start a run" in messages[0], messages


class _Cyclic(LogisticRegression):
    """An estimator skops cannot save: an attribute that contains itself (skops recurses, as it
    did on a fold's callback context in scikit-learn 1.9)."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _Cyclic:
        self.trail_: list[Any] = []
        self.trail_.append(self.trail_)
        return super().fit(X, y, sample_weight)


def test_a_model_skops_cannot_save_warns_once_and_the_rest_is_logged(autolog: Any) -> None:
    X, y = load_iris(return_X_y=True)
    reference = LogisticRegression(max_iter=1000).fit(X, y)
    autolog()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        models = [_Cyclic(max_iter=1000).fit(X, y) for _ in range(2)]
    messages = _autolog_warnings(caught)
    assert len(messages) == 1 and "save the model" in messages[0], messages
    assert "RecursionError" in messages[0]
    assert all((m.predict(X) == reference.predict(X)).all() for m in models)
    runs = _runs("Default")
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    assert all(r.data.metrics["training_accuracy"] > 0.9 for r in runs)
    client = opsloop.get_client()
    assert all(client.list_artifacts(r.info.run_id, "model") == [] for r in runs)


def test_the_users_own_error_propagates_and_fails_the_run(autolog: Any) -> None:
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError) as without:
        LogisticRegression(C=-1.0).fit(X, y)
    autolog()
    with pytest.raises(ValueError) as within:
        LogisticRegression(C=-1.0).fit(X, y)
    assert str(within.value) == str(without.value)
    (run,) = _runs("Default")
    assert run.info.status == "FAILED" and opsloop.active_run() is None
