"""A fully cached run recorded without SQLAlchemy: the runner's records, outputs read on
demand, the usual path for anything else, and a whole CLI process that never imports the ORM."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import opsloop
from opsloop import fluent
from opsloop.pipelines.cached_run import CachedOutputs
from opsloop.pipelines.cached_run import run_all_cached
from tests.pipelines import example

VOLATILE = {"opsloop.launcher", "opsloop.source.command", "opsloop.heartbeat"}  # per process


@pytest.fixture
def client() -> Any:
    """The default client (the embedded store under this test's OPSLOOP_HOME): a run with
    no client is recorded on the same store."""
    example.CALLS.clear()
    return fluent.get_client()


def _records(client: Any, result: Any) -> list[tuple[Any, ...]]:
    """What a pipeline run left in the store, ids and times aside."""
    rows = []
    for run_id in [result.run_id, *(s.run_id for s in result.steps)]:
        run = client.get_run(run_id)
        tags = {k: v for k, v in run.data.tags.items() if k not in VOLATILE}
        files = sorted((a.path, a.digest) for a in client.list_artifacts(run_id))
        rows.append((run.info.run_name, run.info.status, run.info.parent_run_id is None, tags,
                     run.data.params, run.data.metrics, files))  # fmt: skip
    return rows


def test_a_fully_cached_run_writes_what_the_runner_writes(client: Any) -> None:
    first = example.registered.run(client=client, C=0.5)
    assert not any(s.cached for s in first.steps)
    usual = example.registered.run(client=client, C=0.5)  # cached, through the client
    example.CALLS.clear()
    fast = example.registered.run(C=0.5)  # no client: straight from the cache
    assert isinstance(fast.outputs, CachedOutputs) and example.CALLS == []
    assert fast.status == "FINISHED" and all(s.cached for s in fast.steps)
    assert [(s.name, s.reason, s.digest, s.model_version) for s in fast.steps] == [
        (s.name, s.reason, s.digest, s.model_version) for s in usual.steps
    ]
    assert _records(client, fast) == _records(client, usual)
    assert {s.run_id for s in fast.steps}.isdisjoint({s.run_id for s in usual.steps})
    # outputs are read when asked for: a frame, two named frames, a registered model
    assert fast.outputs["score"] == first.outputs["score"]
    pd.testing.assert_frame_equal(fast.outputs["load"], first.outputs["load"])
    assert set(fast.outputs["holdout"]) == {"train", "test"}
    pd.testing.assert_frame_equal(fast.outputs["holdout"]["test"], first.outputs["holdout"]["test"])
    model = fast.outputs["fit"]
    assert (model.coef_ == first.outputs["fit"].coef_).all()
    assert client.models.get("pipeline-clf").latest_version == 1  # reused, not registered again


def test_anything_but_a_full_hit_takes_the_usual_path(client: Any) -> None:
    example.training.run(client=client, C=1.0)
    changed = example.training.run(C=0.1)  # a param changed: train and evaluate run
    assert not isinstance(changed.outputs, CachedOutputs)
    assert [s.cached for s in changed.steps] == [True, True, False, False]
    fresh = example.training.run(C=0.1, no_cache=True)
    assert not isinstance(fresh.outputs, CachedOutputs)
    assert {s.reason for s in fresh.steps} == {"--no-cache"}
    uncached = example.fan_out.run()  # cache=False steps always run
    uncached = example.fan_out.run()
    assert not isinstance(uncached.outputs, CachedOutputs)
    assert not any(s.cached for s in uncached.steps)
    started: list[str] = []
    hooked = example.training.run(C=0.1, on_start=started.append)  # a launcher's hook
    assert not isinstance(hooked.outputs, CachedOutputs) and started == [hooked.run_id]


def _graph_and_settings(client: Any) -> tuple[Any, Any]:
    return example.training.build(C=1.0), client.settings


def _arguments() -> dict[str, Any]:
    return {"experiment": None, "params": {"C": 1.0, "rows": 400}, "tags": {}}


def test_a_missing_output_blob_or_another_schema_is_left_to_the_usual_path(client: Any) -> None:
    first = example.training.run(client=client, C=1.0)
    graph, settings = _graph_and_settings(client)
    assert run_all_cached(graph, settings, **_arguments()) is not None
    database = settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        db.execute("UPDATE alembic_version SET version_num = '0001_tracking'")
    assert run_all_cached(graph, settings, **_arguments()) is None
    with sqlite3.connect(database) as db:
        db.execute("UPDATE alembic_version SET version_num = :v", {"v": _head()})
    described = json.loads(client.get_run(first.step("split").run_id).data.tags["opsloop.outputs"])
    blob = client._tracking.blobs.path_of(described["output"]["digest"])
    blob.chmod(0o600)
    blob.unlink()  # the split's output is gone from the blob store
    before = len(client.search_runs("pipeline-training", "").items)
    assert run_all_cached(graph, settings, **_arguments()) is None
    assert len(client.search_runs("pipeline-training", "").items) == before  # nothing written


def test_a_server_or_another_database_is_left_to_the_usual_path(client: Any, pg_url: str) -> None:
    example.training.run(client=client, C=1.0)
    graph, settings = _graph_and_settings(client)
    from dataclasses import replace

    assert run_all_cached(graph, replace(settings, database_url=pg_url), **_arguments()) is None
    remote = replace(settings, server_url="http://127.0.0.1:9")
    assert run_all_cached(graph, remote, **_arguments()) is None


def _head() -> str:
    from opsloop.store.migrate import SCHEMA_HEAD

    return SCHEMA_HEAD


CHAIN = """
from opsloop.pipelines import pipeline, step

@step
def first(n: int) -> int:
    return n + 1

@step
def inc(x: int) -> int:
    return x + 1

@pipeline
def chain(n: int = 0) -> None:
    x = first(n)
    for _ in range(4):
        x = inc(x)
"""

PROBE = """
import sys
sys.argv = ["opsloop", "pipelines", "run", "chain.py:chain", "--param", "n=3"]
from opsloop.app.cli import main
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
print("ORM imported:", "sqlalchemy" in sys.modules)
"""


def test_a_fully_cached_cli_run_never_imports_sqlalchemy(tmp_path: Path) -> None:
    (tmp_path / "chain.py").write_text(textwrap.dedent(CHAIN))
    env = {**os.environ, "COLUMNS": "200"}
    run = [sys.executable, "-c", PROBE]
    cold = subprocess.run(run, capture_output=True, text=True, env=env, check=True)
    assert "ORM imported: True" in cold.stdout and "first run of this step" in cold.stdout
    cached = subprocess.run(run, capture_output=True, text=True, env=env, check=True)
    assert "ORM imported: False" in cached.stdout, cached.stdout + cached.stderr
    assert cached.stdout.count("cached from run") == 5
    client = opsloop.Client()
    runs = client.search_runs("pipeline-chain", "attributes.status = 'FINISHED'")
    assert len(runs.items) == 12  # two pipeline runs of five steps each, all recorded
