"""Data versions as step inputs: resolved before anything runs, cached by their content (a
moved alias is a miss, the same content under another name a hit), recorded as lineage, and
pinned by resume and reproduce wherever aliases have moved since."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import opsloop
from opsloop.config import load_settings
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.pipelines.data_inputs import DATA_TAG
from opsloop.pipelines.reruns import reproduce
from opsloop.pipelines.reruns import resume
from tests.pipelines import example


def _version(client: Any, folder: Path, name: str, values: list[int]) -> str:
    """A one-file CSV table version of ``name``; its ref."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "numbers.csv").write_text("x\n" + "".join(f"{v}\n" for v in values))
    return str(client.data.add(str(folder / "numbers.csv"), name).version.ref)


def test_an_alias_is_resolved_once_and_its_content_is_the_cache_key(
    client: Any, tmp_path: Path
) -> None:
    first = _version(client, tmp_path / "a", "numbers", [1, 2, 3])
    second = _version(client, tmp_path / "b", "numbers", [10, 20])
    client.data.set_alias(first, "champion")

    run = example.tally.run(client=client, table="numbers@champion")
    assert run.outputs["doubled"] == {"total": 12.0}
    recorded = client.get_run(run.run_id).data.tags
    assert json.loads(recorded[DATA_TAG]) == {"numbers@champion": first}
    again = example.tally.run(client=client, table="numbers@champion")
    assert [s.cached for s in again.steps] == [True, True]
    assert client.pipelines.get_run(again.run_id).data_versions == {"numbers@champion": first}

    client.data.set_alias(second, "champion")  # the alias moves: the content changed
    moved = example.tally.run(client=client, table="numbers@champion")
    assert moved.outputs["doubled"] == {"total": 60.0}
    assert not moved.step("total").cached and "data changed" in moved.step("total").reason
    named = example.tally.run(client=client, table=second)  # the same content, named otherwise
    assert [s.cached for s in named.steps] == [True, True]
    copy = _version(client, tmp_path / "c", "numbers-copy", [10, 20])  # another dataset
    assert example.tally.run(client=client, table=copy).step("total").cached

    # who read it: the pipeline runs and the step runs that computed
    readers = {link.run_id for link in client.data.lineage(second) if link.relation == "input"}
    assert {moved.run_id, moved.step("total").run_id, named.run_id} <= readers
    assert example.CALLS == ["total", "doubled", "total", "doubled"]


def test_resume_and_reproduce_read_what_the_original_read(client: Any, tmp_path: Path) -> None:
    first = _version(client, tmp_path / "a", "numbers", [1, 2, 3])
    run = example.tally.run(client=client, table="numbers")  # a bare name: the latest
    _version(client, tmp_path / "b", "numbers", [100])  # a newer latest since
    same = reproduce(client, run.run_id)
    assert same.identical, same.steps
    assert same.data_versions == {"numbers": (first, first)}  # not the newer latest
    assert json.loads(client.get_run(same.run_id).data.tags[DATA_TAG]) == {"numbers": first}
    resumed = resume(client, run.run_id)
    assert [s.cached for s in resumed.steps] == [True, True]
    latest = example.tally.run(client=client, table="numbers")
    assert latest.outputs["doubled"] == {"total": 200.0}


def test_unknown_and_malformed_versions_start_nothing(client: Any, tmp_path: Path) -> None:
    _version(client, tmp_path / "a", "numbers", [1])
    with pytest.raises(NotFound, match=r"step 'total' takes data version 'numbers@7' as 'table'"):
        example.tally.run(client=client, table="numbers@7")
    with pytest.raises(NotFound, match="'nothing'"):
        example.tally.run(client=client, table="nothing@champion")
    with pytest.raises(InvalidInput, match="param 'table' of step 'total' takes a data version"):
        example.tally.run(client=client, table=3)
    with pytest.raises(InvalidInput, match="param 'table' of step 'total'"):
        example.tally.run(client=client, table="numbers@no such alias")
    assert example.CALLS == []
    with pytest.raises(NotFound):  # not even the pipeline's run was started
        client.search_runs("pipeline-tally")


def test_a_step_in_another_process_reads_its_version(client: Any, tmp_path: Path) -> None:
    ref = _version(client, tmp_path / "a", "numbers", [4, 5])
    run = example.tally.run(client=client, table=ref, executor="process")
    assert run.outputs["doubled"] == {"total": 18.0}


def test_the_cli_says_which_version_is_unknown(tmp_path: Path) -> None:
    cli = str(Path(sys.executable).with_name("opsloop"))
    root = Path(example.__file__).parents[2]
    done = subprocess.run(
        [cli, "pipelines", "run", "tests.pipelines.example:tally", "--param", "table=ghost@2"],
        capture_output=True, text=True, cwd=root, timeout=120,
        env={**os.environ, "OPSLOOP_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert done.returncode == 3 and "takes data version 'ghost@2'" in done.stderr, done.stderr
    environ = {**os.environ, "OPSLOOP_HOME": str(tmp_path / "home")}
    with opsloop.Client(settings=load_settings(home=str(tmp_path / "home"))) as client:
        ref = _version(client, tmp_path / "a", "numbers", [1, 2])
        client.data.set_alias(ref, "champion")
    ran = subprocess.run(
        [cli, "pipelines", "run", "tests.pipelines.example:tally", "--param",
         "table=numbers@champion"], capture_output=True, text=True, cwd=root, timeout=120,
        env=environ,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    run_id = ran.stdout.split("(run ")[1].split(")")[0]
    shown = subprocess.run([cli, "pipelines", "show", run_id], capture_output=True, text=True,
                           cwd=root, timeout=120, env=environ)  # fmt: skip
    assert "read numbers@champion → numbers@1" in shown.stdout, shown.stdout
