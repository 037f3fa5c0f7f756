"""Fine-tuning on Ray Train: LoRA SFT in two gloo workers of a ``TorchTrainer`` on one local Ray
instance for the module (2 CPUs), started from inside a pipeline step that runs on the ``ray``
executor (so the fine-tune picks Ray itself, and its two workers must fit beside the step that
waits for them), against the same config in one process with the same global batch (two
workers of 2 rows, one process of 4 rows: the same rows at each step), with the network
blocked; ``opsloop finetune --executor ray`` without Ray, or with a ``RAY_ADDRESS`` nobody
answers, is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from opsloop.pipelines import pipeline
from opsloop.pipelines import step
from tests.finetune.support import LORA
from tests.finetune.support import chats
from tests.finetune.support import offline_client
from tests.finetune.support import register_base

pytest.importorskip("trl")
pytest.importorskip("peft")
pytest.importorskip("ray.train.torch")

pytestmark = pytest.mark.slow

CONFIG = {**LORA, "max_steps": 4, "save_steps": 2}


@step(cache=False)
def finetune_step(config: dict[str, Any]) -> dict[str, Any]:
    """A pipeline step that fine-tunes with the step's store, wherever the step runs."""
    import dataclasses

    import opsloop
    from opsloop.app.finetune import run_finetune

    return dataclasses.asdict(run_finetune(opsloop.get_client(), config))


@pipeline
def finetune_pipeline(config: dict[str, Any]) -> None:
    finetune_step(config)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, local_ray: Any) -> Iterator[SimpleNamespace]:
    """One run on two Ray Train workers (micro batch 2, inside a Ray step) and one in this
    process (micro batch 4), on 8 chats: two global batches per epoch."""
    from opsloop.app.finetune import run_finetune

    root = tmp_path_factory.mktemp("on-ray")
    with offline_client(root) as client:
        register_base(client)
        rows = chats() + chats()[:3]
        (root / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        client.data.add(str(root / "train.jsonl"), name="chats")
        on_ray = {**CONFIG, "micro_batch_size": 2, "devices": 2, "output": "bot-ray"}
        ran = finetune_pipeline.run(client=client, executor="ray", config=on_ray)
        single = run_finetune(client, {**CONFIG, "micro_batch_size": 4, "executor": "local"})
        yield SimpleNamespace(client=client, ray=ran.outputs["finetune_step"], single=single)


def test_two_ray_workers_reach_the_loss_of_one_process_with_the_same_global_batch(
    world: Any,
) -> None:
    """Within 1%, as the torchrun path: the rows of each step are the same, but each rank
    averages the loss over its own tokens before DDP averages the ranks, so the loss is a
    mean of two means where one process takes one mean over all the tokens."""
    on_ray, single = world.ray, world.single
    assert on_ray["steps"] == single.steps == 4
    assert on_ray["final_loss"] == pytest.approx(single.final_loss, rel=1e-2)


def test_the_ray_run_is_recorded_like_a_local_one(world: Any) -> None:
    """One loss point per step (rank 0 alone records), each checkpoint stored in the blob
    store, the executor tagged, and the adapter registered from the last checkpoint."""
    client, run_id = world.client, world.ray["run_id"]
    assert client.get_metric_history(run_id, "loss").steps == [1, 2, 3, 4]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["opsloop.finetune.executor"] == "ray"
    assert client.get_run(world.single.run_id).data.tags["opsloop.finetune.executor"] == "local"
    assert run.data.params["devices"] == "2"
    for saved in (2, 4):
        stored = {a.path for a in client.list_artifacts(run_id, f"checkpoints/checkpoint-{saved}")}
        assert f"checkpoints/checkpoint-{saved}/adapter_model.safetensors" in stored
    version = client.models.version(world.ray["version"])
    assert version.tags["opsloop.finetune.kind"] == "lora-adapter"


def _one_line_refusal(root: Path, code: str, **env: str) -> str:
    """``opsloop finetune CONFIG --executor ray`` in a fresh process that runs ``code``
    first; what it printed, checked to be one line and a failure."""
    config = root / "refused.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "devices": 2}))
    argv = ["finetune", str(config), "--executor", "ray"]
    program = f"{code}\nfrom opsloop.app.cli import main\nmain({argv!r})"
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        env={**os.environ, "OPSLOOP_HOME": str(root / "refused-home"), **env},
        timeout=120,
    )
    out = (done.stdout + done.stderr).strip()
    assert done.returncode != 0 and len(out.splitlines()) == 1, out
    return out


def test_an_address_nobody_answers_is_one_line(tmp_path: Path) -> None:
    out = _one_line_refusal(tmp_path, "", RAY_ADDRESS="127.0.0.1:1")  # nobody on port 1
    assert "Ray at 127.0.0.1:1 (RAY_ADDRESS) cannot be reached" in out


NO_RAY = """
import sys
class NoRay:  # as if Ray were not installed: every import of it fails
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "ray":
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, NoRay())
"""


def test_without_ray_installed_is_one_line(tmp_path: Path) -> None:
    out = _one_line_refusal(tmp_path, NO_RAY, RAY_ADDRESS="")
    assert "needs Ray: pip install" in out
