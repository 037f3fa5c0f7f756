"""The eval gate after fine-tuning: an eval suite asks the new version and the champion (both
registered causal LMs, answering in-process through ``model:`` providers), the gate's rules
decide, and an alias moves only on a pass. The champion is the tiny chat model trained until it
answers as taught; the new version is a few LoRA steps on an untrained base, so it cannot match
the champion, and a gate that compares them fails."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import yaml

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from tests.finetune.support import chats
from tests.finetune.support import cli
from tests.finetune.support import offline_client
from tests.finetune.support import register_base
from tests.finetune.test_finetune import CONFIG as SFT_CONFIG
from tests.gateway import chat_lm

pytest.importorskip("trl")
pytest.importorskip("peft")

# the fine-tuning tests' config, shorter: two steps on the attention layers only
CONFIG = {**SFT_CONFIG, "lora_target_modules": ["c_attn"], "lr_scheduler": "linear", "max_steps": 2}
SUITE = {
    "name": "bot-answers",
    "prompts": [{"id": "ask", "messages": [{"role": "user", "content": "{{ question }}"}]}],
    "providers": [{"id": "model:bot@champion", "config": {"max_tokens": 8, "temperature": 0}}],
    "tests": [
        {"vars": {"question": "ping"}, "assert": [{"type": "icontains", "value": "pong"}]},
        {"vars": {"question": "greet"}, "assert": [{"type": "icontains", "value": "hello"}]},
        {"vars": {"question": "letters"}, "assert": [{"type": "icontains", "value": "a b c"}]},
    ],
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A base to fine-tune, chats, a suite file, and ``bot@1``: the trained chat model as the
    champion the gate compares with."""
    root = tmp_path_factory.mktemp("finetune-gate")
    with offline_client(root) as client:
        register_base(client)
        tokenizer, champion = chat_lm.trained()
        client.models.register(
            "bot", champion, input_example=np.array([[1, 2, 3]]),
            flavor_options={"tokenizer": tokenizer},
        )  # fmt: skip
        client.models.set_alias("bot@1", "champion")
        (root / "train.jsonl").write_text("\n".join(json.dumps(c) for c in chats()) + "\n")
        client.data.add(str(root / "train.jsonl"), name="chats")
        suite = root / "suite.yaml"
        suite.write_text(yaml.safe_dump(SUITE))
        yield SimpleNamespace(client=client, root=root, suite=str(suite))


def _cli(world: Any, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    """The CLI on the world's store (each test has a home of its own otherwise)."""
    monkeypatch.setenv("OPSLOOP_HOME", str(world.root / "home"))
    return cli(*args)


def _config(world: Any, gate: dict[str, Any], **changes: Any) -> Path:
    path = world.root / f"finetune-{len(list(world.root.glob('finetune-*')))}.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, **changes, "gate": {"suite": world.suite, **gate}}))
    return path


def test_a_suite_asks_a_registered_model(world: Any) -> None:
    run = world.client.evals.run(world.suite)
    assert run.pass_rate == 1.0 and [r.provider for r in run.results] == ["model:bot@champion"] * 3
    assert (run.results or [])[0].output.startswith("pong")


def test_a_version_worse_than_the_champion_fails_the_gate_and_moves_nothing(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = world.client
    config = _config(world, {"rules": [{"metric": "pass_rate", "max_regression": 0.0}]})
    code, out = _cli(world, monkeypatch, "finetune", str(config), "--json")
    assert code == 1, out
    result = json.loads(out)
    gate = result["gate"]
    assert result["version"] == "bot@2" and gate["version"] == "bot@2"
    assert gate["against"] == "bot@1" and gate["passed"] is False and gate["alias_moved"] is None
    assert gate["against_metrics"]["pass_rate"] == 1.0
    assert gate["metrics"]["pass_rate"] < 1.0 and gate["metrics"]["icontains"] is not None
    (rule,) = gate["verdict"]["rules"]
    assert rule["passed"] is False and rule["detail"].startswith("regression")
    assert "candidate" not in client.models.version("bot@2").aliases
    assert client.models.version("bot@champion").ref == "bot@1"
    # on record: the eval run, and the verdict on the fine-tuning run and on the version
    stored = client.evals.get(gate["eval_run_id"])
    assert {r.provider for r in stored.results or []} == {"candidate", "champion"}
    tags = client.get_run(result["run_id"]).data.tags
    assert tags["opsloop.finetune.gate_run"] == gate["eval_run_id"]
    assert tags["opsloop.finetune.gate"].startswith("failed vs bot@1")
    assert (
        client.models.version("bot@2").tags["opsloop.finetune.gate"].startswith("failed vs bot@1")
    )


def test_a_passing_version_gets_the_alias(world: Any) -> None:
    from opsloop.app.finetune import run_finetune

    client = world.client
    gate = {"against": None, "rules": [{"metric": "score", "min": 0.0}], "alias": "candidate"}
    result = run_finetune(client, _config(world, gate))
    assert result.gate is not None and result.gate.passed and result.gate.against is None
    assert result.gate.alias_moved == "candidate"
    assert client.models.version("bot@candidate").ref == result.version
    history = client.models.history("bot", "candidate")
    assert "passed the eval gate 'bot-answers'" in (history[0].reason or "")


def test_the_gate_prints_its_verdict(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = {"against": "champion", "rules": [{"metric": "pass_rate", "min": 0.0}]}
    code, out = _cli(world, monkeypatch, "finetune", str(_config(world, gate)))
    assert code == 0, out
    assert "eval gate: bot@" in out and "vs bot@1" in out and "PASS" in out
    assert "passed: candidate -> bot@" in out


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ({"rules": [{"metric": "bleu", "min": 0.1}]}, "gate rule on unknown metric 'bleu'"),
        ({"suit": "x.yaml"}, "unknown key 'gate.suit'; did you mean 'gate.suite'?"),
        ({"rules": [{"metirc": "pass_rate", "min": 1}]}, "did you mean 'gate.rules.0.metric'?"),
        ({"rules": [{"slice_metric": "f1", "max_regression": 0}]}, "an eval gate has no slices"),
        ({"suite": "missing.yaml"}, "cannot read suite missing.yaml"),
    ],
)
def test_a_bad_gate_is_refused_before_training(world: Any, gate: dict, message: str) -> None:
    from opsloop.app.finetune import run_finetune

    versions = len(world.client.models.versions("bot").items)
    raw = {**CONFIG, "gate": {"suite": world.suite, **gate}}
    with pytest.raises(InvalidInput) as refused:
        run_finetune(world.client, raw)
    assert message in str(refused.value)
    assert len(world.client.models.versions("bot").items) == versions  # nothing trained


def test_a_model_provider_must_exist_and_generate(world: Any) -> None:
    suite = {**SUITE, "providers": [{"id": "model:nobody@1"}]}
    with pytest.raises(NotFound):
        world.client.evals.run(suite)
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    from sklearn.linear_model import LogisticRegression

    world.client.models.register(
        "churn", LogisticRegression().fit(x, [0, 0, 1, 1]), input_example=x
    )
    with pytest.raises(InvalidInput, match="churn@1 is a sklearn model"):
        world.client.evals.run({**SUITE, "providers": [{"id": "model:churn@1"}]})
