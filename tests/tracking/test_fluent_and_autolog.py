"""The module-level SDK, seeds, and scikit-learn autologging with a real trained model."""

from __future__ import annotations

import random

import numpy as np
import pytest

import opsloop
from opsloop import InvalidInput


def test_fluent_runs_nesting_and_failure_status() -> None:
    opsloop.set_experiment("fluent")
    with opsloop.start_run(run_name="outer") as outer:
        opsloop.log_param("a", 1)
        opsloop.log_metrics({"x": 1.0, "y": 2.0}, step=0)
        with pytest.raises(InvalidInput, match="nested"):
            opsloop.start_run()
        with opsloop.start_run(run_name="inner", nested=True) as inner:
            opsloop.log_metric("z", 3.0)
        with pytest.raises(ZeroDivisionError), opsloop.start_run(nested=True) as failing:
            1 / 0  # noqa: B018
    assert opsloop.active_run() is None
    assert opsloop.get_run(inner.run_id).info.parent_run_id == outer.run_id
    assert opsloop.get_run(failing.run_id).info.status == "FAILED"
    assert opsloop.get_run(outer.run_id).data.metrics == {"x": 1.0, "y": 2.0}
    found = opsloop.search_runs("fluent", "metrics.z = 3")
    assert [r.info.run_name for r in found.items] == ["inner"]


def test_seed_everything_is_recorded_and_repeatable() -> None:
    opsloop.seed_everything(7)
    a = (random.random(), np.random.rand())
    opsloop.seed_everything(7)
    assert (random.random(), np.random.rand()) == a
    with opsloop.start_run() as run:
        pass
    assert opsloop.get_run(run.run_id).data.tags["opsloop.seed"] == "7"
    with pytest.raises(InvalidInput):
        opsloop.seed_everything(-1)


def test_sklearn_autolog_logs_params_metrics_and_a_safe_model() -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import opsloop.sklearn

    X, y = load_iris(return_X_y=True)
    opsloop.sklearn.autolog()
    try:
        opsloop.set_experiment("auto")
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    finally:
        opsloop.sklearn.autolog(disable=True)
    runs = opsloop.search_runs("auto").items
    assert len(runs) == 1  # only the top-level fit, not the pipeline's inner fits
    run = runs[0]
    assert run.info.run_name == "Pipeline" and run.info.status == "FINISHED"
    assert run.data.metrics["training_accuracy"] > 0.9
    assert "training_roc_auc" not in run.data.metrics  # three classes
    assert "steps" in run.data.params
    loaded = opsloop.sklearn.load_model(run.info.run_id)
    assert (loaded.predict(X) == model.predict(X)).all()
