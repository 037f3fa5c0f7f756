"""The evals backend contract and its two implementations: in-process services or REST.

Suites run where the SDK runs (it calls the models); only the results travel to the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from urllib.parse import quote

from pydantic import TypeAdapter

from opsloop.kernel.identity import current_user
from opsloop.kernel.transport import HttpTransport
from opsloop.llm.evals import services
from opsloop.llm.evals.entities import EvalRun, EvalRunCreate
from opsloop.store.database import Store

__all__ = ["EvalBackend", "HttpEvalBackend", "LocalEvalBackend"]

_RUNS = TypeAdapter(list[EvalRun])
_RULES = TypeAdapter(dict[str, dict[str, float | str]])


class EvalBackend(ABC):
    @abstractmethod
    def record(self, body: EvalRunCreate) -> EvalRun: ...

    @abstractmethod
    def get(self, run_id: str) -> EvalRun: ...

    @abstractmethod
    def list(self, suite: str | None, limit: int) -> list[EvalRun]: ...

    @abstractmethod
    def set_rule(self, prompt: str, label: str, suite: str, min_pass_rate: float) -> None: ...

    @abstractmethod
    def delete_rule(self, prompt: str, label: str) -> None: ...

    @abstractmethod
    def rules(self, prompt: str) -> dict[str, dict[str, float | str]]: ...


class LocalEvalBackend(EvalBackend):
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


class HttpEvalBackend(EvalBackend):
    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport

    def record(self, body: EvalRunCreate) -> EvalRun:
        response = self.http.request(
            "POST", "/api/eval-runs", json=body.model_dump(mode="json"), idempotent=False
        )
        return EvalRun.model_validate(response.json())

    def get(self, run_id: str) -> EvalRun:
        return EvalRun.model_validate(
            self.http.request("GET", f"/api/eval-runs/{quote(run_id)}").json()
        )

    def list(self, suite: str | None, limit: int) -> list[EvalRun]:
        params: dict[str, str | int] = {"limit": limit}
        if suite:
            params["suite"] = suite
        return _RUNS.validate_python(
            self.http.request("GET", "/api/eval-runs", params=params).json()
        )

    def _rule_path(self, prompt: str, label: str = "") -> str:
        return f"/api/prompts/{quote(prompt)}/label-rules" + (f"/{quote(label)}" if label else "")

    def set_rule(self, prompt: str, label: str, suite: str, min_pass_rate: float) -> None:
        body = {"suite": suite, "min_pass_rate": min_pass_rate}
        self.http.request("PUT", self._rule_path(prompt, label), json=body)

    def delete_rule(self, prompt: str, label: str) -> None:
        self.http.request("DELETE", self._rule_path(prompt, label))

    def rules(self, prompt: str) -> dict[str, dict[str, float | str]]:
        return _RULES.validate_python(self.http.request("GET", self._rule_path(prompt)).json())
