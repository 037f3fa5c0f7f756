"""The process and Ray executors: steps run elsewhere and still are tracked, cached and linked
to their step runs; a process that dies or runs over its timeout fails only its step."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import opsloop
from opsloop.errors import InvalidInput
from opsloop.pipelines import step
from opsloop.pipelines.runner import PipelineFailed
from tests.pipelines import example


@pytest.fixture
def client(sqlite_url: str, tmp_path: Path) -> Any:
    c = opsloop.Client(database_url=sqlite_url, blob_url=str(tmp_path / "blobs"))
    example.CALLS.clear()
    yield c
    c.close()


def test_a_process_per_step(client: Any) -> None:
    result = example.where.run(client=client, executor="process", tag="p")
    output = result.outputs["whoami"]
    assert output["pid"] != os.getpid() and output["tag"] == "p"
    assert output["run"] == result.step("whoami").run_id  # the step run, inside the process
    trained = example.training.run(client=client, executor="process", C=0.3)
    assert trained.outputs["evaluate"]["accuracy"] > 0.8
    again = example.training.run(client=client, executor="process", C=0.3)
    assert all(s.cached for s in again.steps)  # the cache does not care where steps ran
    assert client.get_run(again.run_id).data.tags["opsloop.pipeline.executor"] == "process"


def test_a_dying_process_fails_its_step(client: Any) -> None:
    with pytest.raises(PipelineFailed, match="exit code 3"):
        example.crashing.run(client=client, executor="process")


def test_bad_executor_and_resources_are_refused(client: Any) -> None:
    with pytest.raises(InvalidInput, match="choose local, process, ray"):
        example.where.run(client=client, executor="dask")
    with pytest.raises(InvalidInput, match="unknown resource 'disk'"):
        step(resources={"disk": 10})(lambda: None)
    with pytest.raises(InvalidInput, match="write it like 512MB"):
        step(resources={"memory": "lots"})(lambda: None)
    assert step(resources={"memory": "512MB"})(lambda: None).resources == {"memory": 2**29}


def test_steps_as_ray_tasks_on_a_local_instance(
    client: Any, tmp_path: Path, local_ray: Any
) -> None:
    result = example.where.run(client=client, executor="ray", tag="r")
    output = result.outputs["whoami"]
    assert output["pid"] != os.getpid() and output["run"] == result.step("whoami").run_id
    trained = example.training.run(client=client, executor="ray", C=0.7)
    assert trained.outputs["evaluate"]["accuracy"] > 0.8
    with pytest.raises(PipelineFailed, match="the cluster caught fire"):
        example.broken.run(client=client, executor="ray")
    marker = tmp_path / "worker-died"
    survived = example.lost_worker.run(client=client, executor="ray", marker=str(marker))
    assert marker.exists() and survived.outputs["flaky_worker"] == "survived"


@pytest.mark.parametrize("executor", ["local", "process"])
def test_a_step_writes_to_its_pipelines_store(client: Any, executor: str) -> None:
    """A pipeline run by a server's scheduler must write to the server's database, whatever
    the process's default settings say; here the default store is another SQLite file."""
    name = f"noted-{executor}"
    result = example.writes_through_the_sdk.run(client=client, executor=executor, name=name)
    assert client.get_experiment_by_name(name).experiment_id == result.outputs["note_experiment"]
    default = opsloop.Client()  # the process's own store (OPSLOOP_HOME)
    assert default.settings.database_url != client.settings.database_url
    from opsloop.errors import NotFound

    with pytest.raises(NotFound):
        default.get_experiment_by_name(name)
    default.close()
