"""SFT learns only the assistant's tokens when the base's chat template marks its turns with
``{% generation %}`` (TRL's ``assistant_only_loss``), and the whole chat when it does not: the
quickstart's support bot learnt to decline by topic only once its loss left the questions out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opsloop.app.quickstart_lm import build_support_lm
from opsloop.llm.finetune.config import FinetuneConfig
from opsloop.llm.finetune.ports import BaseModel
from opsloop.llm.finetune.trainers import TrainingInputs
from opsloop.llm.finetune.trainers import build_trainer
from tests.finetune.support import LORA

pytest.importorskip("trl")

ANSWER = "Reset it from the sign-in page."
CHAT = [
    {"role": "user", "content": "How do I reset my password?"},
    {"role": "assistant", "content": ANSWER},
]
ROWS = [{"messages": CHAT}] * 4


def _trainer(tokenizer: Any, model: Any, folder: Path) -> Any:
    config = FinetuneConfig(**{**LORA, "adapter": "full", "max_steps": 1})
    inputs = TrainingInputs(config, BaseModel(model, tokenizer, "base@1"), None, ROWS, None)
    return build_trainer(inputs, folder, [])


def test_a_marked_template_trains_on_the_answer_only(tmp_path: Path) -> None:
    tokenizer, model = build_support_lm("{{ question }}", steps=1)
    assert "{% generation %}" in tokenizer.chat_template
    trainer = _trainer(tokenizer, model, tmp_path / "marked")
    assert trainer.args.assistant_only_loss
    example = trainer.train_dataset[0]
    pairs = zip(example["input_ids"], example["labels"], strict=True)
    learnt = [token for token, label in pairs if label != -100]  # -100: left out of the loss
    assert tokenizer.decode(learnt).replace(" ", "") == (ANSWER + tokenizer.eos_token).replace(
        " ", ""
    )
    assert 0 < len(learnt) < len(example["input_ids"])  # the question is not learnt

    tokenizer.chat_template = tokenizer.chat_template.replace("{% generation %}", "").replace(
        "{% endgeneration %}", ""
    )
    plain = _trainer(tokenizer, model, tmp_path / "plain")
    assert not plain.args.assistant_only_loss
    whole = plain.train_dataset[0]
    assert whole.get("labels", whole["input_ids"]) == whole["input_ids"]  # every token learnt
