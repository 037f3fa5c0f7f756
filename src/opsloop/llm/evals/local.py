"""The local evals backend: the services in-process, one transaction per call."""

from __future__ import annotations

from opsloop.kernel.identity import current_user
from opsloop.kernel.store_calls import StoreCalls
from opsloop.llm.evals import services
from opsloop.llm.evals.backend import EvalBackend
from opsloop.llm.evals.entities import EvalRun
from opsloop.llm.evals.entities import EvalRunCreate
from opsloop.store.database import Store

__all__ = ["LocalEvalBackend"]


class LocalEvalBackend(StoreCalls, EvalBackend):
    """Eval runs and label rules in ``store``, through the evals services."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, body: EvalRunCreate) -> EvalRun:
        return self._write(services.record_run, body, current_user())

    def get(self, run_id: str) -> EvalRun:
        return self._read(services.get_run, run_id)

    def list(self, suite: str | None, limit: int) -> list[EvalRun]:
        return self._read(services.list_runs, suite, limit)

    def set_rule(self, prompt: str, label: str, suite: str, min_pass_rate: float) -> None:
        self._write(services.set_label_rule, prompt, label, suite, min_pass_rate)

    def delete_rule(self, prompt: str, label: str) -> None:
        self._write(services.delete_label_rule, prompt, label)

    def rules(self, prompt: str) -> dict[str, dict[str, float | str]]:
        return self._read(services.label_rules, prompt)
