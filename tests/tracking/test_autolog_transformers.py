"""The transformers ``Trainer`` callback: the trainer's logs at step = global step, its
arguments as params, one run started and ended around training; and importing the module loads
no torch. A real Trainer trains a small torch model on iris on the CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import opsloop


def test_importing_the_module_loads_neither_transformers_nor_torch() -> None:
    code = (
        "import sys, opsloop.transformers; "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _iris_rows() -> list[dict[str, Any]]:
    import torch
    from sklearn.datasets import load_iris
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return [
        {"features": torch.tensor(x, dtype=torch.float32), "labels": torch.tensor(int(label))}
        for x, label in zip(X, y, strict=True)
    ]


def test_trainer_logs_go_to_a_run_at_the_global_step(tmp_path: Path) -> None:
    import torch
    from transformers import Trainer
    from transformers import TrainingArguments

    from opsloop.transformers import OpsloopCallback

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, features: Any, labels: Any = None) -> dict[str, Any]:
            logits = self.linear(features)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            return {"loss": loss, "logits": logits}

    torch.manual_seed(0)
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=6, logging_steps=2,
        per_device_train_batch_size=25, learning_rate=0.05, report_to=[], use_cpu=True,
        save_strategy="no", run_name="iris-linear", disable_tqdm=True,
    )  # fmt: skip
    opsloop.set_experiment("hf")
    trainer = Trainer(
        model=Classifier(), args=args, train_dataset=_iris_rows(), callbacks=[OpsloopCallback()]
    )
    trainer.train()

    (run,) = opsloop.search_runs("hf").items
    assert run.info.run_name == "iris-linear" and run.info.status == "FINISHED"
    assert opsloop.active_run() is None
    assert run.data.params["max_steps"] == "6" and run.data.params["learning_rate"] == "0.05"
    history = opsloop.get_client().get_metric_history(run.info.run_id, "loss")
    logged = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
    assert list(history.steps) == [step for step, _ in logged] == [2, 4, 6]
    assert list(history.values) == pytest.approx([loss for _, loss in logged])
    assert "train_runtime" in run.data.metrics  # the final summary, at the last step
