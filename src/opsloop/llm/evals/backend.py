"""The evals backend contract: what the SDK needs from the store of eval runs, local or remote.

Two implementations: :class:`~opsloop.llm.evals.local.LocalEvalBackend` calls the services
in-process, :class:`~opsloop.llm.evals.remote.RemoteEvalBackend` calls the REST API, which calls
the same services. Suites run where the SDK runs (it calls the models; see
:mod:`opsloop.llm.evals.runner`); only the results travel to the store. Label rules say which
suite a prompt version must pass before a label may point at it; the prompt registry enforces
them through its label gate (:mod:`opsloop.llm.evals.label_gate`).

Contract: methods are thread-safe; returned entities are immutable snapshots (frozen pydantic
models; ``rules`` returns a new dict); errors are ``OpsloopError`` subclasses, the same class
whichever backend raised them; every write is durable when the method returns. Each method's
docstring names the errors it raises on purpose; any method may also raise ``StoreError`` (the
database or server failed; retrying may help) and, over HTTP, ``Unauthenticated`` or
``PermissionDenied``.
"""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod

from opsloop.llm.evals.entities import EvalRun
from opsloop.llm.evals.entities import EvalRunCreate

__all__ = ["EvalBackend"]


class EvalBackend(ABC):
    """Stored suite runs and prompt label rules. See the module docstring for the contract."""

    @abstractmethod
    def record(self, body: EvalRunCreate) -> EvalRun:
        """Store a finished suite run, created by the current user, and return it with its
        results and its comparison with the suite's previous run (regressions and fixes, cell
        by cell). ``InvalidInput`` for a run without results or a malformed suite name."""

    @abstractmethod
    def get(self, run_id: str) -> EvalRun:
        """One run with its per-case results. ``NotFound`` when there is no such run."""

    @abstractmethod
    def list(self, suite: str | None, limit: int) -> list[EvalRun]:
        """Up to ``limit`` runs (of one suite, or all), newest first, without their per-case
        results; no run is an empty list. A server refuses a ``limit`` outside 1..1000 with
        ``InvalidInput``."""

    @abstractmethod
    def set_rule(self, prompt: str, label: str, suite: str, min_pass_rate: float) -> None:
        """From now on, ``prompt@label`` moves only to versions whose latest run of ``suite``
        passed at least ``min_pass_rate`` of their cases (replacing the label's rule if it had
        one). ``NotFound`` when the prompt does not exist; ``InvalidInput`` for a malformed
        label or suite name or a rate outside [0, 1]."""

    @abstractmethod
    def delete_rule(self, prompt: str, label: str) -> None:
        """Let ``prompt@label`` move freely again. ``NotFound`` when the label has no rule."""

    @abstractmethod
    def rules(self, prompt: str) -> dict[str, dict[str, float | str]]:
        """The prompt's rules by label: ``{label: {"suite": ..., "min_pass_rate": ...}}``.
        Raises nothing on purpose: an unknown prompt has no rules."""
