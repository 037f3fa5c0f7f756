"""``opsloop finetune CONFIG --tune``: a three-trial multi-objective study (eval loss, tokens)
of LoRA fine-tunes of the tiny GPT-2, on CPU with the network blocked. Trials of 2-4 steps keep
the module well within a minute on two cores."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from opsloop.errors import InvalidInput
from opsloop.pipelines.tuning import read_result
from tests.finetune.support import chats
from tests.finetune.support import cli
from tests.finetune.support import offline_client
from tests.finetune.support import register_base

pytest.importorskip("trl")
pytest.importorskip("peft")
pytest.importorskip("optuna")

CONFIG = {
    "base_model": "base@1",
    "datasets": "chats@1",
    "eval_dataset": "chats@1",
    "output": "bot",
    "lora_r": 4,
    "lora_alpha": 8,
    "lora_target_modules": ["c_attn"],
    "lr_scheduler": "constant",
    "micro_batch_size": 5,
    "sequence_len": 64,
    "seed": 7,
    "tune": {
        "n_trials": 3,
        "cost": "tokens",
        "space": {
            "learning_rate": {"type": "float", "low": 1.0e-3, "high": 1.0e-1, "log": True},
            "max_steps": {"type": "int", "low": 2, "high": 4},
        },
    },
}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """The registered base, the chats as a data version, and the study run through the CLI
    (its result read back from the study's run, which the printed line names)."""
    root = tmp_path_factory.mktemp("finetune-tune")
    with offline_client(root) as client:
        register_base(client)
        (root / "train.jsonl").write_text("\n".join(json.dumps(r) for r in chats()) + "\n")
        client.data.add(str(root / "train.jsonl"), name="chats")
        config = root / "finetune.yaml"
        config.write_text(yaml.safe_dump(CONFIG))
        code, out = cli("finetune", str(config), "--tune")
        assert code == 0, out
        run_id = re.search(r"\(run ([0-9a-f]+)\)", out)
        assert run_id is not None, out
        result = read_result(client, run_id.group(1)).model_dump(mode="json")
        yield SimpleNamespace(client=client, root=root, result=result, out=out)


def _trials(study: Any) -> list[Any]:
    found = study.client.search_runs(
        "tune-finetune-bot", f"attributes.parent_run_id = '{study.result['run_id']}'"
    )
    return list(found.items)


def _dominates(a: dict[str, float], b: dict[str, float]) -> bool:
    return all(a[k] <= b[k] for k in a) and any(a[k] < b[k] for k in a)


def test_the_front_is_the_trials_no_other_beats(study: Any) -> None:
    result = study.result
    assert result["trials"] == 3 and result["best_score"] is None
    values = {
        int(r.data.tags["opsloop.trial.number"]): {
            k: r.data.metrics[k] for k in ("eval_loss", "tokens")
        }
        for r in _trials(study)
    }
    assert len(values) == 3
    front = {t["number"]: t["values"] for t in result["front"]}
    assert front and all(values[n] == pytest.approx(v) for n, v in front.items())
    for number, mine in values.items():
        beaten = any(_dominates(other, mine) for other in values.values())
        assert beaten == (number not in front), (number, values)


def test_each_trial_is_a_child_run_linked_to_its_fine_tune(study: Any) -> None:
    client = study.client
    trials = _trials(study)
    assert len(trials) == 3 and all(r.info.status == "FINISHED" for r in trials)
    for trial in trials:
        finetune_run = client.get_run(trial.data.tags["opsloop.tune.finetune_run"])
        assert finetune_run.data.tags["opsloop.tune.trial_run"] == trial.info.run_id
        assert finetune_run.data.params["max_steps"] == trial.data.params["max_steps"]
        assert finetune_run.data.metrics["num_tokens"] == trial.data.metrics["tokens"]
    versions = {t.data.tags["opsloop.tune.version"] for t in trials}
    assert versions == {"bot@1", "bot@2", "bot@3"}


def test_the_front_is_logged_as_a_table_on_the_study_run(study: Any) -> None:
    result = study.result
    table = json.loads(study.client.read_artifact(result["run_id"], "tuning/pareto_front.json"))
    assert table["columns"] == ["trial", "eval_loss", "tokens", "learning_rate", "max_steps",
                                "run_id"]  # fmt: skip
    assert [row[0] for row in table["data"]] == [t["number"] for t in result["front"]]
    assert [row[-1] for row in table["data"]] == [t["run_id"] for t in result["front"]]


def test_the_front_is_printed(study: Any) -> None:
    out = study.out
    assert "Pareto front" in out and "eval_loss" in out and "study finetune-bot: 3 trials" in out
    assert all(t["run_id"][:12] in out for t in study.result["front"])  # wide tables wrap


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_trial": 3}, "unknown key 'tune.n_trial'; did you mean 'tune.n_trials'?"),
        ({"space": {"learning_rte": {}}}, "did you mean 'tune.space.learning_rate'?"),
        ({"space": {}}, "the space is empty"),
        ({"n_trials": 0}, "tune.n_trials"),
        ({"space": {"max_steps": {"type": "int", "low": 4, "high": 2}}}, "needs low < high"),
    ],
)
def test_bad_tune_sections_are_refused_before_training(
    study: Any, change: dict, message: str
) -> None:
    from opsloop.app.finetune_tune import tune_finetune

    config = {**CONFIG, "output": "never", "tune": {**CONFIG["tune"], **change}}
    with pytest.raises(InvalidInput) as refused:
        tune_finetune(study.client, config)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert "never" not in {m.name for m in study.client.models.list().items}


def test_tune_needs_a_tune_section_and_an_eval_dataset(study: Any) -> None:
    from opsloop.app.finetune_tune import tune_finetune

    plain = {k: v for k, v in CONFIG.items() if k != "tune"}
    with pytest.raises(InvalidInput, match="needs a tune: section"):
        tune_finetune(study.client, plain)
    no_eval = {k: v for k, v in CONFIG.items() if k != "eval_dataset"}
    with pytest.raises(InvalidInput, match="add eval_dataset"):
        tune_finetune(study.client, no_eval)
