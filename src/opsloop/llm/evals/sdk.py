"""Evals in the SDK: ``client.evals.run("suite.yaml")`` runs a suite and stores the run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from opsloop.llm.evals.backend import EvalBackend
from opsloop.llm.evals.entities import EvalResult
from opsloop.llm.evals.entities import EvalRun
from opsloop.llm.evals.ports import CaseData
from opsloop.llm.evals.ports import ChatModels
from opsloop.llm.evals.ports import PromptSource
from opsloop.llm.evals.ports import TraceSink
from opsloop.llm.evals.suite import Suite
from opsloop.llm.evals.suite import load_suite

__all__ = ["EvalsClient"]


class EvalsClient:
    """Run eval suites, read past runs, and make prompt labels require a passing suite.

    Example:
        >>> run = Client().evals.run("evals/support.yaml")
        >>> run.pass_rate, run.passed, run.comparison.regressions
        >>> Client().evals.require("answer", "production", suite="support-answers")
    """

    def __init__(
        self,
        backend: EvalBackend,
        prompts: PromptSource,
        traces: TraceSink,
        data: CaseData,
        models: ChatModels | None = None,
    ) -> None:
        self._backend = backend
        self._prompts = prompts
        self._traces = traces
        self._data = data
        self._models = models

    def run(
        self,
        suite: str | Path | dict[str, Any] | Suite,
        *,
        concurrency: int | None = None,
        threshold: float | None = None,
        on_result: Callable[[EvalResult], None] | None = None,
    ) -> EvalRun:
        """Run every prompt x provider x case of ``suite`` and store the run."""
        from opsloop.llm.evals.runner import run_suite

        loaded = suite if isinstance(suite, Suite) else load_suite(suite)
        if threshold is not None:
            loaded = loaded.model_copy(update={"threshold": threshold})
        body = run_suite(
            loaded,
            self._prompts,
            self._data,
            self._traces,
            concurrency=concurrency,
            on_result=on_result,
            models=self._models,
        )
        return self._backend.record(body)

    def get(self, run_id: str) -> EvalRun:
        return self._backend.get(run_id)

    def runs(self, suite: str | None = None, limit: int = 50) -> list[EvalRun]:
        """Runs newest first (without their per-case results)."""
        return self._backend.list(suite, limit)

    def require(self, prompt: str, label: str, *, suite: str, min_pass_rate: float = 1.0) -> None:
        """Make ``prompt@label`` move only to versions that passed ``suite``."""
        self._backend.set_rule(prompt, label, suite, min_pass_rate)

    def unrequire(self, prompt: str, label: str) -> None:
        self._backend.delete_rule(prompt, label)

    def rules(self, prompt: str) -> dict[str, dict[str, float | str]]:
        return self._backend.rules(prompt)
