"""A Hugging Face ``Trainer`` callback: ``Trainer(..., callbacks=[OpsloopCallback()])``.

Every ``on_log`` of the trainer (``loss``, ``learning_rate``, ``grad_norm``, ``eval_*``...)
becomes metrics at step = ``state.global_step``; the ``TrainingArguments`` become params when
training begins. With no active run, one named after ``args.run_name`` (or "transformers") is
started there and ended by ``on_train_end``. Only the main process logs. A logging failure is
one warning per kind and never stops training (see :mod:`opsloop.autolog`).

``import opsloop.transformers`` imports neither transformers nor torch: the class is built on
first access to ``OpsloopCallback``, when the user is about to hand it to a ``Trainer`` (and has
torch loaded anyway). A training that raises never reaches ``on_train_end``: open the run
yourself (``with opsloop.start_run(): trainer.train()``) and the ``with`` marks it FAILED.

``pip install 'opsloop[llm]'``. For PyTorch Lightning, see :mod:`opsloop.lightning` (a logger).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    OpsloopCallback: type  # built on first access, by __getattr__ below

__all__ = ["OpsloopCallback"]


@functools.cache
def _build() -> type:
    from transformers import TrainerCallback

    from opsloop.autolog.guard import attempt
    from opsloop.autolog.runs import OwnedRun
    from opsloop.autolog.runs import clean_params
    from opsloop.autolog.runs import finite_metrics

    class OpsloopCallback(TrainerCallback):  # type: ignore[misc]
        """Logs the trainer's logs at step = global step, and its arguments as params."""

        def __init__(self, *, log_args: bool = True) -> None:
            self.log_args = log_args
            self._owned = OwnedRun()

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not state.is_world_process_zero:
                return
            run = self._owned.open(args.run_name or "transformers")
            if run is not None and self.log_args:
                with attempt("log params"):
                    params = {k: v for k, v in args.to_dict().items() if v not in (None, "")}
                    run.client.log_params(run.run_id, clean_params(params))

        def on_log(
            self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any
        ) -> None:
            run = self._owned.run
            if run is None or not state.is_world_process_zero:
                return
            with attempt("log the trainer's metrics"):
                metrics = finite_metrics(logs or {})
                if metrics:
                    run.client.log_metrics(run.run_id, metrics, step=int(state.global_step))

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._owned.close()

    return OpsloopCallback


def __getattr__(name: str) -> Any:
    if name != "OpsloopCallback":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _build()  # built once, on first access
