"""``opsloop finetune --nproc 2``: data parallel LoRA SFT in two gloo processes on CPU, against
the same config in one process with the same global batch (two ranks of 2 rows, one process of
4 rows: the same rows at each step), with the network blocked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from tests.finetune.support import LORA
from tests.finetune.support import chats
from tests.finetune.support import cli
from tests.finetune.support import offline_client
from tests.finetune.support import register_base

pytest.importorskip("trl")
pytest.importorskip("peft")

pytestmark = pytest.mark.slow

CONFIG = {**LORA, "max_steps": 4}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """One run in two processes (micro batch 2, through the CLI) and one in this process
    (micro batch 4), on 8 chats: two global batches per epoch, split evenly between ranks."""
    from opsloop.app.finetune import run_finetune

    root = tmp_path_factory.mktemp("parallel")
    with offline_client(root) as client:
        register_base(client)
        rows = chats() + chats()[:3]
        (root / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        client.data.add(str(root / "train.jsonl"), name="chats")
        config = root / "finetune.yaml"
        config.write_text(yaml.safe_dump({**CONFIG, "micro_batch_size": 2, "output": "bot-dp"}))
        code, out = cli("finetune", str(config), "--nproc", "2", "--json")
        assert code == 0, out
        single = run_finetune(client, {**CONFIG, "micro_batch_size": 4})
        yield SimpleNamespace(client=client, parallel=json.loads(out), single=single)


def test_two_processes_reach_the_loss_of_one_with_the_same_global_batch(world: Any) -> None:
    parallel, single = world.parallel, world.single
    assert parallel["steps"] == single.steps == 4
    assert parallel["final_loss"] == pytest.approx(single.final_loss, rel=1e-2)


def test_only_rank_zero_records_and_the_run_is_complete(world: Any) -> None:
    """One loss point per step (rank 1 logs nothing), the processes in the params, the last
    checkpoint stored, and the adapter registered from it."""
    client, run_id = world.client, world.parallel["run_id"]
    history = client.get_metric_history(run_id, "loss")
    assert history.steps == [1, 2, 3, 4]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["devices"] == "2"
    assert "devices" not in client.get_run(world.single.run_id).data.params
    stored = {a.path for a in client.list_artifacts(run_id, "checkpoints/checkpoint-4")}
    assert "checkpoints/checkpoint-4/adapter_model.safetensors" in stored
    version = client.models.version(world.parallel["version"])
    assert version.tags["opsloop.finetune.kind"] == "lora-adapter"
