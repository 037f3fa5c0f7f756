"""``opsloop finetune`` with ``rl: dpo``: the loop from users' ratings to a preference-tuned
model. Rated traces (each prompt answered "yes", rated up, and "no", rated down) become a
preference data version through ``opsloop feedback export --format preference``, and the tiny
GPT-2 of ``tests/gateway/chat_lm.py`` is tuned on it with DPO: LoRA through the CLI, and full
fine-tuning with a reference copy. On CPU, a fixed seed, the network blocked."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from tests.finetune.support import cli
from tests.finetune.support import offline_client
from tests.finetune.support import register_base
from tests.gateway import chat_lm

pytest.importorskip("trl")
pytest.importorskip("peft")

QUESTIONS = list(chat_lm.ANSWERS)
CONFIG = {
    "base_model": "base@1",
    "datasets": "prefs@1",
    "eval_dataset": "prefs@1",
    "eval_steps": 3,
    "output": "bot-dpo",
    "rl": "dpo",
    "dpo_beta": 0.1,
    "adapter": "lora",
    "lora_r": 4,
    "lora_alpha": 8,
    "lora_target_modules": ["c_attn", "c_fc"],
    "learning_rate": 0.02,
    "lr_scheduler": "constant",
    "max_steps": 6,
    "micro_batch_size": 5,
    "sequence_len": 64,
    "seed": 7,
}


def _rate(client: Any) -> None:
    """Two answers to each question, "yes" rated up and "no" rated down, as traces."""
    tracer = client.traces.tracer
    rated = []
    for question in QUESTIONS:
        for answer, thumbs in (("yes", True), ("no", False)):
            prompt = [{"role": "user", "content": question}]
            with tracer.span("support", kind="chain", input=prompt) as span:
                span.update(output=answer)
            rated.append((span.trace_id, thumbs))
    client.traces.flush()
    for trace_id, thumbs in rated:
        client.traces.score(trace_id, "thumbs", thumbs)


def _bad_versions(client: Any, root: Path) -> None:
    """Data versions a DPO run must refuse: chats, a pair without 'rejected' on line 2, and a
    pair whose answers are the same."""
    pair = {
        "prompt": [{"role": "user", "content": "ping"}],
        "chosen": [{"role": "assistant", "content": "yes"}],
        "rejected": [{"role": "assistant", "content": "no"}],
    }
    versions = {
        "chats": [{"messages": [*pair["prompt"], *pair["chosen"]]}],
        "bad-prefs": [pair, {"prompt": pair["prompt"], "chosen": pair["chosen"]}],
        "same-prefs": [{**pair, "rejected": pair["chosen"]}],
    }
    for name, rows in versions.items():
        (root / name).mkdir()
        (root / name / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        client.data.add(str(root / name / "train.jsonl"), name=name)


def margin(model: Any, tokenizer: Any) -> float:
    """The mean over the questions of log p("yes" | q) - log p("no" | q), summed over the
    answer's tokens as the chat template renders them."""
    import torch

    def logp(question: str, answer: str) -> float:
        prompt = chat_lm.prompt_ids(tokenizer, question)
        chat = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        text = tokenizer.apply_chat_template(chat, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert ids[: len(prompt)] == prompt
        with torch.no_grad():
            logits = model(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids))).logits
            logits = logits[0, :-1].log_softmax(-1)
        targets = torch.tensor(ids[1:])
        picked = logits.gather(1, targets[:, None])[:, 0]
        return float(picked[len(prompt) - 1 :].sum())

    return sum(logp(q, "yes") - logp(q, "no") for q in QUESTIONS) / len(QUESTIONS)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A registered base, the preference version exported from rated traces, a LoRA DPO run
    through the CLI, and a full DPO run through the SDK split 2 + 1 steps with resume."""
    from opsloop.app.finetune import run_finetune

    root = tmp_path_factory.mktemp("dpo")
    with offline_client(root) as client:
        tokenizer = register_base(client)
        _rate(client)
        _bad_versions(client, root)
        exported = client.feedback.export("prefs", format="preference", score="thumbs")
        assert (exported.ref, exported.rows) == ("prefs@1", len(QUESTIONS))
        config = root / "dpo.yaml"
        config.write_text(yaml.safe_dump(CONFIG))
        code, out = cli("finetune", str(config), "--json")
        assert code == 0, out
        full = {**CONFIG, "adapter": "full", "output": "bot-dpo-full", "experiment": "full"}
        first = run_finetune(client, {**full, "max_steps": 2})
        resumed = run_finetune(client, {**full, "max_steps": 3}, resume=True)
        yield SimpleNamespace(
            client=client, root=root, lora=json.loads(out), first=first, full=resumed,
            tokenizer=tokenizer,
        )  # fmt: skip


def test_the_run_logs_loss_rewards_and_eval(world: Any) -> None:
    client, lora = world.client, world.lora
    run = client.get_run(lora["run_id"])
    assert run.info.status == "FINISHED"
    for key in ("loss", "learning_rate", "rewards/accuracies", "rewards/margins"):
        assert client.get_metric_history(lora["run_id"], key).steps == [1, 2, 3, 4, 5, 6], key
    assert client.get_metric_history(lora["run_id"], "eval_loss").steps == [3, 6]
    assert {"tokens_per_s", "peak_memory_mb", "eval_rewards/margins"} <= set(run.data.metrics)
    margins = client.get_metric_history(lora["run_id"], "rewards/margins").values
    assert margins[-1] > margins[0]
    assert run.data.metrics["rewards/accuracies"] == 1.0
    assert run.data.params["rl"] == "dpo" and run.data.params["dpo_beta"] == "0.1"
    assert run.data.params["datasets"] == "prefs@1"
    assert run.data.tags["opsloop.finetune.method"] == "dpo"
    checkpoint = client.list_artifacts(lora["run_id"], "checkpoints/checkpoint-6")
    assert "checkpoints/checkpoint-6/adapter_model.safetensors" in {a.path for a in checkpoint}


def test_the_adapter_is_registered_with_its_base(world: Any) -> None:
    client, lora = world.client, world.lora
    version = client.models.version(lora["version"])
    assert version.ref == "bot-dpo@1" and version.run_id == lora["run_id"]
    assert version.tags["opsloop.finetune.base"] == "base@1"
    assert version.tags["opsloop.finetune.kind"] == "lora-adapter"
    assert version.tags["opsloop.finetune.method"] == "dpo"
    upstream = json.dumps(client.models.lineage("bot-dpo@1"))
    assert "base" in upstream and "prefs" in upstream


def test_a_full_run_resumes_from_its_checkpoint(world: Any) -> None:
    client, first, full = world.client, world.first, world.full
    assert first.steps == 2 and full.steps == 3 and full.resumed_from == first.run_id
    assert client.get_metric_history(full.run_id, "rewards/margins").steps == [3]
    version = client.models.version(full.version)
    assert version.tags["opsloop.finetune.kind"] == "weights"
    assert version.tags["opsloop.finetune.base"] == "base@1"


def test_the_policy_prefers_the_chosen_answer_more_than_its_base(world: Any) -> None:
    from peft import PeftModel

    client = world.client
    checkpoint = client.download_artifacts(
        world.lora["run_id"], "checkpoints/checkpoint-6", world.root / "lora"
    )
    adapted = PeftModel.from_pretrained(client.models.load("base@1").raw, str(checkpoint)).eval()
    with adapted.disable_adapter():
        before = margin(adapted, world.tokenizer)
    assert margin(adapted, world.tokenizer) > before + 1.0
    full = client.models.load(world.full.version).raw.eval()
    assert margin(full, world.tokenizer) > before + 1.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dpo_beta": 0.5, "rl": None}, "dpo_beta applies only to preference tuning"),
        ({"rl": "orpo"}, "rl: Input should be 'dpo'"),
        ({"dpo_beta": 0}, "dpo_beta: Input should be greater than 0"),
        ({"datasets": "chats@1"}, "chats@1 train.jsonl line 1: missing field 'prompt'"),
        ({"datasets": "bad-prefs@1"}, "bad-prefs@1 train.jsonl line 2: missing field 'rejected'"),
        ({"datasets": "same-prefs@1"}, "line 1: 'chosen' and 'rejected' are the same answer"),
    ],
)
def test_bad_rows_and_configs_are_refused_in_one_line(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict, message: str
) -> None:
    from opsloop.errors import NotFound

    monkeypatch.setenv(
        "OPSLOOP_HOME", str(world.root / "home")
    )  # the world's store, not the test's
    config = tmp_path / "dpo.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, **change, "output": "never"}))
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        code, _ = cli("finetune", str(config))
    assert code != 0
    lines = errors.getvalue().strip().splitlines()
    assert len(lines) == 1 and message in lines[0], errors.getvalue()
    assert "Traceback" not in errors.getvalue()
    with pytest.raises(NotFound):  # refused before any run was started
        world.client.get_experiment_by_name("finetune-never")


def test_an_sft_config_carries_no_preference_keys() -> None:
    from opsloop.llm.finetune import load_config

    sft = {k: v for k, v in CONFIG.items() if k not in ("rl", "dpo_beta")}
    fields = load_config(sft).fields()
    assert "rl" not in fields and "dpo_beta" not in fields  # params and hash as before DPO
    assert load_config(sft).method == "sft" and load_config(CONFIG).method == "dpo"
    assert load_config(sft).hash != load_config(CONFIG).hash
