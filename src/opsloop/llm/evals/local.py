"""The local evals backend: the services in-process, one transaction per call."""

from __future__ import annotations

from opsloop.kernel.identity import current_user
from opsloop.llm.evals import services
from opsloop.llm.evals.backend import EvalBackend
from opsloop.llm.evals.entities import EvalRun
from opsloop.llm.evals.entities import EvalRunCreate
from opsloop.store.database import Store

__all__ = ["LocalEvalBackend"]


class LocalEvalBackend(EvalBackend):
    """Eval runs and label rules in ``store``, through the evals services."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, body: EvalRunCreate) -> EvalRun:
        with self.store.write() as s:
            return services.record_run(s, body, current_user())

    def get(self, run_id: str) -> EvalRun:
        with self.store.read() as s:
            return services.get_run(s, run_id)

    def list(self, suite: str | None, limit: int) -> list[EvalRun]:
        with self.store.read() as s:
            return services.list_runs(s, suite, limit)

    def set_rule(self, prompt: str, label: str, suite: str, min_pass_rate: float) -> None:
        with self.store.write() as s:
            services.set_label_rule(s, prompt, label, suite, min_pass_rate)

    def delete_rule(self, prompt: str, label: str) -> None:
        with self.store.write() as s:
            services.delete_label_rule(s, prompt, label)

    def rules(self, prompt: str) -> dict[str, dict[str, float | str]]:
        with self.store.read() as s:
            return services.label_rules(s, prompt)
