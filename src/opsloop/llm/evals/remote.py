"""The remote evals backend: eval runs and label rules over an opsloop server's REST API."""

from __future__ import annotations

from pydantic import TypeAdapter

from opsloop.kernel.transport import HttpTransport
from opsloop.llm.evals import routes
from opsloop.llm.evals.backend import EvalBackend
from opsloop.llm.evals.entities import EvalRun
from opsloop.llm.evals.entities import EvalRunCreate

__all__ = ["RemoteEvalBackend"]

_RUNS = TypeAdapter(list[EvalRun])
_RULES = TypeAdapter(dict[str, dict[str, float | str]])


def _rule_url(prompt: str, label: str) -> str:
    """One label's rule; an empty label names the prompt's rules (which a write refuses)."""
    if not label:
        return routes.LABEL_RULES.url(name=prompt)
    return routes.LABEL_RULE.url(name=prompt, label=label)


class RemoteEvalBackend(EvalBackend):
    """Eval runs on an opsloop server; errors come back as the same ``OpsloopError`` classes."""

    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport

    def record(self, body: EvalRunCreate) -> EvalRun:
        data = self.http.json(
            "POST", routes.RUNS.url(), json=body.model_dump(mode="json"), idempotent=False
        )
        return EvalRun.model_validate(data)

    def get(self, run_id: str) -> EvalRun:
        return EvalRun.model_validate(self.http.json("GET", routes.RUN.url(run_id=run_id)))

    def list(self, suite: str | None, limit: int) -> list[EvalRun]:
        params: dict[str, str | int] = {"limit": limit}
        if suite:
            params["suite"] = suite
        return _RUNS.validate_python(self.http.json("GET", routes.RUNS.url(), params=params))

    def set_rule(self, prompt: str, label: str, suite: str, min_pass_rate: float) -> None:
        body = {"suite": suite, "min_pass_rate": min_pass_rate}
        self.http.request("PUT", _rule_url(prompt, label), json=body)

    def delete_rule(self, prompt: str, label: str) -> None:
        self.http.request("DELETE", _rule_url(prompt, label))

    def rules(self, prompt: str) -> dict[str, dict[str, float | str]]:
        return _RULES.validate_python(self.http.json("GET", routes.LABEL_RULES.url(name=prompt)))
