"""A write reads the run's liveness (id, lifecycle stage, status) in plain SQL, not as an ORM row:
the same refusals as before on SQLite and PostgreSQL (a deleted run takes nothing, a finished
one only tags unless MLflow's ``finished=True``), a prefix still stands for the full id, and a
change made through the ORM earlier in the same transaction is seen."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.store.database import Store
from opsloop.tracking import experiments
from opsloop.tracking import run_data
from opsloop.tracking import runs
from opsloop.tracking.entities import MetricBatch
from opsloop.tracking.entities import MetricSeries

API = "/api/2.0/mlflow"


def _new_run(session: Session) -> str:
    experiment = experiments.create_experiment(session, "liveness")
    return runs.create_run(session, experiment.experiment_id).info.run_id


def _points(value: float) -> MetricBatch:
    return MetricBatch(series={"loss": MetricSeries(values=[value], steps=[0], timestamps=[1])})


def test_deleted_and_finished_runs_are_refused_as_before(store: Store) -> None:
    with store.write() as session:
        run_id = _new_run(session)
        runs.delete_run(session, run_id)  # flushed, not committed: the same transaction sees it
        with pytest.raises(Conflict, match=f"run {run_id} is deleted; restore it"):
            run_data.log_batch(session, run_id, params={"lr": 1}, finished=True)
        with pytest.raises(Conflict, match="is deleted; restore it before logging artifacts"):
            runs.require_writable_run(session, run_id, "artifacts")
        runs.restore_run(session, run_id)
        runs.update_run(session, run_id, status="FINISHED")
        with pytest.raises(Conflict, match="is FINISHED; params and metrics can only") as refused:
            run_data.log_batch(session, run_id, metrics=_points(1.0))
        assert refused.value.details == {"status": "FINISHED"}
        assert run_data.log_batch(session, run_id, metrics=_points(2.0), finished=True) == 1
        run_data.log_batch(session, run_id, tags={"note": "late"})  # tags annotate ended runs
    with store.read() as session:
        run = runs.get_run(session, run_id)
    assert (run.data.metrics, run.data.tags["note"]) == ({"loss": 2.0}, "late")


def test_prefixes_unknown_and_malformed_ids(store: Store) -> None:
    with store.write() as session:
        run_id = _new_run(session)
        assert runs.require_run_id(session, run_id[:8]) == run_id
        assert runs.require_writable_run(session, run_id[:6], "params") == run_id
        run_data.log_batch(session, run_id[:8], params={"lr": 0.1}, tags={"team": "ml"})
        with pytest.raises(NotFound, match=f"run {'f' * 32} does not exist"):
            runs.require_writable_run(session, "f" * 32, "params")
        with pytest.raises(InvalidInput):
            runs.require_run_id(session, "abc")
        with pytest.raises(Conflict, match="immutable") as changed:
            run_data.log_batch(session, run_id, params={"lr": 0.2, "new": 1})
        assert changed.value.details == {"key": "lr", "old_value": "0.1", "new_value": "0.2"}
        run_data.log_batch(session, run_id, params={"lr": 0.1, "seed": 7}, tags={"team": "ops"})
        run = runs.get_run(session, run_id)
    assert run.data.params == {"lr": "0.1", "seed": "7"}
    assert run.data.tags["team"] == "ops"  # a tag is overwritten, a param never


def _outcome(write: Any, run_id: str) -> tuple[str, str]:
    """What a write answered: its count, or its refusal's kind and words (the run id put
    aside: each path writes to runs of its own)."""
    try:
        return "logged", str(write())
    except (Conflict, InvalidInput, NotFound, ValueError) as err:
        return type(err).__name__, str(err).replace(run_id, "RUN")


def test_the_plain_write_checks_and_writes_as_the_sessions(store: Store) -> None:
    """``log_batch_plain`` (a plain transaction, MLflow's hot routes) against ``log_batch`` (a
    session), each on its own runs in the same states: the same answer or the same refusal, in
    the same words, and the same data left behind."""
    nan = MetricSeries.model_construct(values=[float("nan")], steps=[0], timestamps=[1])
    cases: list[tuple[str, dict[str, Any]]] = [
        ("running", {"metrics": _points(1.0), "params": {"lr": 0.1}, "tags": {"t": "1"}}),
        ("running", {"params": {"lr": 0.1, "n": 3}}),  # one param again, with the same value
        ("running", {"params": {"lr": 0.2}}),  # a changed param
        ("running", {"params": {"bad key!": 1}}),
        ("running", {"tags": {"": "x"}}),
        ("running", {"metrics": MetricBatch.model_construct(series={"loss": nan})}),
        ("finished", {"metrics": _points(2.0)}),
        ("finished", {"metrics": _points(3.0), "finished": True}),
        ("finished", {"tags": {"note": "late"}}),
        ("deleted", {"params": {"x": 1}, "finished": True}),
        ("deleted", {"tags": {"note": "still"}}),
        ("missing", {"tags": {"a": "b"}}),
        ("malformed", {"params": {"bad key!": 1}}),  # the batch is checked first
        ("malformed", {"tags": {"a": "b"}}),
    ]
    results = {}
    for plain in (False, True):
        with store.write() as session:
            experiment_id = experiments.create_experiment(session, f"plain-{plain}").experiment_id
            by_state = {state: runs.create_run(session, experiment_id).info.run_id
                        for state in ("running", "finished", "deleted")}  # fmt: skip
            runs.update_run(session, by_state["finished"], status="FINISHED")
            runs.delete_run(session, by_state["deleted"])
        by_state["missing"], by_state["malformed"] = "e" * 32, "Z" * 32
        answers = []
        for state, kwargs in cases:
            run_id = by_state[state]
            if plain:
                with store.write_plain() as sql:
                    write = partial(run_data.log_batch_plain, sql, run_id, **kwargs)
                    answers.append(_outcome(write, run_id))
            else:
                with store.write() as session:
                    write = partial(run_data.log_batch, session, run_id, **kwargs)
                    answers.append(_outcome(write, run_id))
        with store.read() as session:
            left = [runs.get_run(session, by_state[state]).data
                    for state in ("running", "finished", "deleted")]  # fmt: skip
        results[plain] = answers, [(data.metrics, data.params, data.tags) for data in left]
    assert results[True][0] == results[False][0]
    assert [kind for kind, _ in results[True][0]] == [
        "logged", "logged", "Conflict", "InvalidInput", "InvalidInput", "InvalidInput", "Conflict",
        "logged", "logged", "Conflict", "logged", "NotFound", "InvalidInput", "InvalidInput",
    ]  # fmt: skip
    assert results[True][1] == results[False][1]
    with store.write() as session:
        run_id = runs.create_run(session, experiment_id).info.run_id
    with pytest.raises(ValueError, match="full run id"), store.write_plain() as sql:
        run_data.log_batch_plain(sql, run_id[:8], tags={"a": "b"})


@pytest.fixture
def http(tmp_path: Path) -> Iterator[TestClient]:
    from opsloop.app.server import create_app
    from opsloop.config import load_settings

    url, blobs = f"sqlite:///{tmp_path / 'db'}", str(tmp_path / "blobs")
    app = create_app(load_settings(home=str(tmp_path), database_url=url, blob_url=blobs))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.opsloop.store.dispose()


def test_mlflow_writes_to_a_deleted_run_are_refused_in_its_shape(http: TestClient) -> None:
    experiment = http.post(f"{API}/experiments/create", json={"name": "x"}).json()
    run = http.post(f"{API}/runs/create", json={"experiment_id": experiment["experiment_id"]})
    run_id = run.json()["run"]["info"]["run_id"]
    assert http.post(f"{API}/runs/delete", json={"run_id": run_id}).status_code == 200
    point = {"run_id": run_id, "key": "loss", "value": 1.0, "timestamp": 1, "step": 0}
    for path, body in [
        ("log-metric", point), ("log-parameter", {"run_id": run_id, "key": "lr", "value": "1"}),
        ("log-batch", {"run_id": run_id, "metrics": [point]}),
    ]:  # fmt: skip
        refused = http.post(f"{API}/runs/{path}", json=body)
        assert refused.status_code == 400, path
        assert refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "is deleted; restore it" in refused.json()["message"]
    assert http.post(f"{API}/runs/restore", json={"run_id": run_id}).status_code == 200
    assert http.post(f"{API}/runs/log-metric", json=point).json() == {}


def test_the_app_hands_its_providers_in_without_dependency_overrides(http: TestClient) -> None:
    """With any override set, FastAPI reads every dependency's signature again on every request
    of every route: the label gate and the embedder are the app's state instead."""
    app: Any = http.app
    assert app.dependency_overrides == {}
    assert app.state.label_gate is not None and app.state.embedder is not None
