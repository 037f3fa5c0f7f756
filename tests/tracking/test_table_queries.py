"""The queries behind the runs table: column keys, counts, activity and quick find (both DBs)."""

from __future__ import annotations

from opsloop.schema import open_store
from opsloop.tracking import experiments
from opsloop.tracking import run_data
from opsloop.tracking import runs
from opsloop.tracking import search
from opsloop.tracking.entities import MetricBatch
from opsloop.tracking.entities import MetricSeries


def test_column_keys_counts_and_find(database_url: str) -> None:
    store = open_store(database_url)
    with store.write() as s:
        a = experiments.create_experiment(s, "alpha").experiment_id
        b = experiments.create_experiment(s, "beta").experiment_id
        first = runs.create_run(s, a, run_name="first_run").info.run_id
        second = runs.create_run(s, a, run_name="second").info.run_id
        other = runs.create_run(s, b, run_name="elsewhere").info.run_id
        run_data.log_batch(s, first, params={"lr": "0.1"}, tags={"team": "x"})
        run_data.log_batch(s, second, params={"depth": "3"})
        run_data.log_batch(s, other, params={"only_b": "1"}, tags={"b_tag": "y"})
        for run_id, key in ((first, "acc"), (second, "loss"), (other, "b_metric")):
            series = MetricSeries(values=[1.0], steps=[0], timestamps=[0])
            run_data.log_batch(s, run_id, metrics=MetricBatch(series={key: series}))
        runs.delete_run(s, second)
    with store.read() as s:
        assert search.column_keys(s, [a]) == {
            "params": ["lr"],
            "metrics": ["acc"],
            "tags": ["team"],
        }
        assert search.column_keys(s, [a], view="all")["params"] == ["depth", "lr"]
        assert search.column_keys(s, [b])["metrics"] == ["b_metric"]
        assert search.count_runs(s, [a]) == 1
        assert search.count_runs(s, [a, b], filter="metrics.b_metric > 0") == 1
        assert search.experiment_activity(s, [a, b])[a][0] == 1
        assert [r.info.run_id for r in search.find_runs(s, "FIRST_")] == [first]
        assert [r.info.run_id for r in search.find_runs(s, other[:8])] == [other]
        assert search.find_runs(s, "%") == []  # wildcards are literal
        assert [e.name for e in experiments.find_experiments(s, "ET")] == ["beta"]
    store.dispose()
