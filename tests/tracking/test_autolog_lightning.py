"""The PyTorch Lightning logger: hyperparameters as params (nested ones flattened), every
``self.log`` at the global step, one run started and ended around the fit (FAILED when the fit
raises); importing the module loads neither Lightning nor torch. A real Trainer fits a small
torch model on iris on the CPU."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import opsloop

pytest.importorskip("lightning")


def test_importing_the_module_loads_neither_lightning_nor_torch() -> None:
    code = (
        "import sys, opsloop.lightning; "
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _fit(fail_at_step: int | None = None) -> Any:
    import lightning
    import torch
    from sklearn.datasets import load_iris
    from sklearn.preprocessing import StandardScaler

    from opsloop.lightning import OpsloopLogger

    X, y = load_iris(return_X_y=True)
    data = torch.utils.data.TensorDataset(
        torch.tensor(StandardScaler().fit_transform(X), dtype=torch.float32), torch.tensor(y)
    )

    class Iris(lightning.LightningModule):
        def __init__(self, lr: float, optimizer: dict[str, Any]) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.linear = torch.nn.Linear(4, 3)

        def training_step(self, batch: Any, index: int) -> Any:
            if fail_at_step is not None and self.global_step == fail_at_step:
                raise RuntimeError("diverged")
            features, labels = batch
            loss = torch.nn.functional.cross_entropy(self.linear(features), labels)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    torch.manual_seed(0)
    trainer = lightning.Trainer(
        max_epochs=2, logger=OpsloopLogger(run_name="iris-lightning"), log_every_n_steps=1,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        accelerator="cpu", devices=1,
    )  # fmt: skip
    loader = torch.utils.data.DataLoader(data, batch_size=50, shuffle=False)
    trainer.fit(Iris(lr=0.1, optimizer={"name": "sgd", "momentum": 0.0}), loader)
    return trainer


def test_a_fit_logs_params_and_metrics_at_the_global_step() -> None:
    opsloop.set_experiment("lightning")
    trainer = _fit()
    (run,) = opsloop.search_runs("lightning").items
    assert run.info.run_name == "iris-lightning" and run.info.status == "FINISHED"
    assert opsloop.active_run() is None
    assert run.data.params["lr"] == "0.1" and run.data.params["optimizer.name"] == "sgd"
    history = opsloop.get_client().get_metric_history(run.info.run_id, "train_loss")
    assert list(history.steps) == list(range(trainer.global_step))  # 3 batches x 2 epochs
    assert history.values[-1] == pytest.approx(float(trainer.callback_metrics["train_loss"]))


def test_a_fit_that_raises_ends_its_run_failed() -> None:
    opsloop.set_experiment("lightning-fails")
    with pytest.raises(RuntimeError, match="diverged"):
        _fit(fail_at_step=2)
    (run,) = opsloop.search_runs("lightning-fails").items
    assert run.info.status == "FAILED" and opsloop.active_run() is None
    assert len(opsloop.get_client().get_metric_history(run.info.run_id, "train_loss").steps) == 2
