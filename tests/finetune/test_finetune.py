"""``opsloop finetune``: LoRA SFT of the tiny GPT-2 of ``tests/gateway/chat_lm.py`` on a chat
data version, on CPU with a fixed seed, with the network blocked. One world per module (a
registered base, a data version, three runs) keeps the file within a minute on two cores."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from opsloop.errors import InvalidInput
from tests.finetune.support import LORA
from tests.finetune.support import chats
from tests.finetune.support import cli
from tests.finetune.support import offline_client
from tests.finetune.support import register_base
from tests.gateway import chat_lm
from tests.no_network import network_attempts
from tests.no_network import no_network_env  # noqa: F401

pytest.importorskip("trl")
pytest.importorskip("peft")

OPSLOOP = str(Path(sys.executable).with_name("opsloop"))
CONFIG = {**LORA, "max_steps": 6, "micro_batch_size": 5}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A registered base (with tokenizer and chat template), chat data versions, and three
    runs: one of six steps through the CLI, and the same config split 3 + 3 with --resume
    (the second half registering merged weights)."""
    from opsloop.app.finetune import run_finetune

    root = tmp_path_factory.mktemp("finetune")
    with offline_client(root) as client:
        register_base(client)
        (root / "train.jsonl").write_text("\n".join(json.dumps(r) for r in chats()) + "\n")
        client.data.add(str(root / "train.jsonl"), name="chats")
        bad = root / "bad" / "train.jsonl"
        bad.parent.mkdir()
        bad.write_text(json.dumps(chats()[0]) + "\n" + json.dumps({"prompt": "hi"}) + "\n")
        client.data.add(str(bad), name="bad-chats")
        config = root / "finetune.yaml"
        evaluated = {**CONFIG, "eval_dataset": "chats@1", "eval_steps": 3}
        config.write_text(yaml.safe_dump(evaluated))
        code, out = cli("finetune", str(config), "--json")
        assert code == 0, out
        whole = json.loads(out)
        split = {**evaluated, "output": "bot-split", "experiment": "split"}
        first = run_finetune(client, {**split, "max_steps": 3})
        second = run_finetune(client, split, resume=True, merge=True)
        yield SimpleNamespace(
            client=client, root=root, whole=whole, first=first, second=second, config=config
        )


def test_the_run_logs_every_step_and_the_loss_falls(world: Any) -> None:
    client, whole = world.client, world.whole
    loss = client.get_metric_history(whole["run_id"], "loss")
    assert loss.steps == [1, 2, 3, 4, 5, 6]
    assert loss.values[-1] < loss.values[0]
    assert whole["final_loss"] == pytest.approx(loss.values[-1])
    assert client.get_metric_history(whole["run_id"], "learning_rate").values == [0.05] * 6
    assert client.get_metric_history(whole["run_id"], "eval_loss").steps == [3, 6]
    run = client.get_run(whole["run_id"])
    assert run.info.status == "FINISHED"
    assert {"tokens_per_s", "peak_memory_mb"} <= set(run.data.metrics)
    assert run.data.metrics["peak_memory_mb"] > 0
    assert run.data.params["lora_r"] == "4" and run.data.params["datasets"] == "chats@1"
    assert run.data.tags["opsloop.finetune.config_hash"] == whole["config_hash"]
    checkpoint = client.list_artifacts(whole["run_id"], "checkpoints/checkpoint-6")
    assert "checkpoints/checkpoint-6/adapter_model.safetensors" in {a.path for a in checkpoint}


def test_the_adapter_is_registered_with_its_base_and_lineage(world: Any) -> None:
    client, whole = world.client, world.whole
    version = client.models.version(whole["version"])
    assert version.ref == "bot@1" and version.run_id == whole["run_id"]
    assert version.tags["opsloop.finetune.base"] == "base@1"
    assert version.tags["opsloop.finetune.kind"] == "lora-adapter"
    folder = client.download_artifacts(whole["run_id"], "checkpoints", world.root / "ckpt")
    assert (folder / "checkpoint-6" / "chat_template.jinja").read_text() == chat_lm.TEMPLATE
    upstream = json.dumps(client.models.lineage("bot@1"))
    assert "base" in upstream and "chats" in upstream  # base@1 and chats@1 -> run -> bot@1
    inputs = [link for link in client.data.lineage("chats@1")]
    assert any(whole["run_id"] in json.dumps(link.model_dump()) for link in inputs)


def test_resume_continues_to_the_same_loss(world: Any) -> None:
    client, first, second = world.client, world.first, world.second
    assert first.steps == 3 and second.steps == 6 and second.resumed_from == first.run_id
    history = client.get_metric_history(second.run_id, "loss")
    assert history.steps == [4, 5, 6]  # it went on from step 3, not from the start
    assert second.final_loss == pytest.approx(world.whole["final_loss"], rel=1e-5)


def test_merged_weights_equal_base_plus_adapter_and_unmerge_is_exact(world: Any) -> None:
    import torch
    from peft import PeftModel

    client, second = world.client, world.second
    assert client.models.version(second.version).tags["opsloop.finetune.kind"] == "weights"
    checkpoint = client.download_artifacts(
        second.run_id, "checkpoints/checkpoint-6", world.root / "resumed"
    )
    ids = torch.tensor([chat_lm.prompt_ids(chat_lm.build_tokenizer(), "tell me a story")])
    with torch.no_grad():
        base = client.models.load("base@1").raw
        before = base(ids).logits
        adapted = PeftModel.from_pretrained(base, str(checkpoint)).eval()
        expected = adapted(ids).logits
        merged = client.models.load(second.version).raw(ids).logits
        adapted.merge_adapter()
        in_place = adapted(ids).logits
        adapted.unmerge_adapter()
        unmerged = adapted(ids).logits
        with adapted.disable_adapter():
            plain = adapted(ids).logits
    assert not torch.allclose(expected, before, atol=1e-3)  # the adapter changed something
    torch.testing.assert_close(merged, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(in_place, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(unmerged, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(plain, before, atol=1e-5, rtol=0)


def test_the_gateway_serves_the_merged_version(world: Any) -> None:
    import asyncio

    from opsloop.registry.causal_lm import RegistryLocalModels

    models = RegistryLocalModels(world.client.models, device="cpu")
    try:
        body = {"model": "bot", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 4}
        answer = asyncio.run(models.generator(world.second.version).complete(body))
    finally:
        models.close()
    assert answer["object"] == "chat.completion" and answer["model"] == "bot-split@2"
    assert answer["usage"]["completion_tokens"] >= 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"datasets": "bad-chats@1"}, "bad-chats@1 train.jsonl line 2: missing field 'messages'"),
        ({"optimizer": "adamw_torc"}, "did you mean 'adamw_torch'?"),
        ({"base_model": "base@9"}, "base@9"),
    ],
)
def test_bad_inputs_are_refused_before_training(world: Any, change: dict, message: str) -> None:
    from opsloop.app.finetune import run_finetune
    from opsloop.errors import OpsloopError

    with pytest.raises(OpsloopError) as refused:
        run_finetune(world.client, {**CONFIG, **change, "output": "never"})
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert "never" not in {m.name for m in world.client.models.list().items}


def test_the_modules_are_listed_when_no_target_matches(world: Any) -> None:
    from opsloop.app.finetune import run_finetune

    with pytest.raises(InvalidInput, match=r"its modules: .*c_attn.*c_fc"):
        run_finetune(world.client, {**CONFIG, "lora_target_modules": ["q_proj"]})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lora_rank": 8}, "unknown key 'lora_rank'; did you mean 'lora_r'?"),
        ({"base_model": "meta-llama/Llama-3.2-1B"}, "never downloads from the Hugging Face Hub"),
        ({"adapter": "qlora"}, "qlora needs a CUDA GPU and the bitsandbytes package"),
        ({"sample_packing": True}, "sample_packing is not supported yet"),
    ],
)
def test_the_cli_refuses_in_one_line(tmp_path: Path, change: dict, message: str) -> None:
    config = tmp_path / "finetune.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, **change}))
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        code, _ = cli("finetune", str(config))
    assert code != 0
    lines = errors.getvalue().strip().splitlines()
    assert len(lines) == 1 and message in lines[0], errors.getvalue()


def test_the_installed_command_prints_no_traceback(
    tmp_path: Path,
    no_network_env: Any,  # noqa: F811  (the fixture)
) -> None:
    config = tmp_path / "finetune.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "lerning_rate": 0.1}))
    done = subprocess.run(
        [OPSLOOP, "finetune", str(config)], capture_output=True, text=True, env=no_network_env,
        timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and network_attempts(no_network_env) == []
    assert done.stderr.strip() == (
        f"error: {config}: unknown key 'lerning_rate'; did you mean 'learning_rate'?"
    )


def test_the_adapter_loads_on_its_base_and_the_gateway_serves_it(world: Any) -> None:
    """A LoRA version is stored as its adapter alone and loads onto its registered base, to
    the same logits as peft's own loading of the run's checkpoint."""
    import asyncio

    import torch
    from peft import PeftModel

    from opsloop.registry.causal_lm import RegistryLocalModels

    client, whole = world.client, world.whole
    checkpoint = client.download_artifacts(
        whole["run_id"], "checkpoints/checkpoint-6", world.root / "adapter-check"
    )
    ids = torch.tensor([chat_lm.prompt_ids(chat_lm.build_tokenizer(), "tell me a story")])
    with torch.no_grad():
        loaded = client.models.load(whole["version"]).raw(ids).logits
        expected = PeftModel.from_pretrained(client.models.load("base@1").raw, str(checkpoint))
        torch.testing.assert_close(loaded, expected.eval()(ids).logits, atol=1e-6, rtol=0)
    models = RegistryLocalModels(client.models, device="cpu")
    try:
        body = {"model": "bot", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 4,
                "temperature": 0}  # fmt: skip
        answer = asyncio.run(models.generator(whole["version"]).complete(body))
    finally:
        models.close()
    assert answer["model"] == "bot@1" and answer["usage"]["completion_tokens"] >= 1


def test_a_lora_adapter_of_a_folder_base_is_refused_before_training(
    world: Any, tmp_path: Path
) -> None:
    from opsloop.app.finetune import run_finetune

    folder = tmp_path / "base-folder"
    folder.mkdir()
    with pytest.raises(InvalidInput, match="register the base first"):
        run_finetune(world.client, {**CONFIG, "base_model": str(folder)})
