"""Eval suites in YAML: prompts x providers x test cases x assertions.

Example::

    name: support-answers
    threshold: 0.9            # the share of cases that must pass (exit code 1 below it)
    concurrency: 4
    prompts:
      - answer@production     # a registered prompt (NAME@N, NAME@label or NAME)
      - id: terse             # or inline text / chat messages
        text: "Answer in five words: {{ question }}"
    providers:
      - id: openai:gpt-4o-mini
        config: {temperature: 0}
      - id: model:support-bot@candidate   # a registered causal LM, answering in-process
    judge: {id: openai:gpt-4o-mini}   # for llm-rubric
    defaults:
      assert:
        - {type: latency, threshold: 5000}
    tests:
      - description: password reset
        vars: {question: "How do I reset my password?", expected: "Use the reset link."}
        assert:
          - {type: icontains, value: reset}
          - {type: similar, value: "{{ expected }}", threshold: 0.7, weight: 2}
      - data: support-qa@3    # every row of a data version (JSONL, CSV, Parquet) is a case
        assert:
          - {type: rouge, value: "{{ expected }}", threshold: 0.4}

A case passes when every assertion passes, or, when the case sets ``threshold``, when its
weighted score reaches it. Everything that can be checked before a model is called is: unknown
assertion types (with the nearest name), prompts that do not exist, variables a prompt needs
that a case does not give.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError
from pydantic import model_validator

from opsloop.console.files import yaml_problem
from opsloop.errors import InvalidInput
from opsloop.errors import validation_problems
from opsloop.llm.evals.assertions import Assertion
from opsloop.llm.evals.providers import ProviderConfig

__all__ = ["Case", "InlinePrompt", "Suite", "TestSpec", "load_suite"]


class InlinePrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    text: str | None = None
    messages: list[dict[str, str]] | None = None

    @model_validator(mode="after")
    def _one(self) -> InlinePrompt:
        if (self.text is None) == (self.messages is None):
            raise ValueError(f"prompt {self.id!r}: give exactly one of text or messages")
        return self


class TestSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    description: str | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    data: str | None = Field(None, description="a data version whose rows are cases")
    assertions: list[Assertion] = Field(default_factory=list, alias="assert")
    threshold: float | None = Field(None, ge=0, le=1)


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    vars: dict[str, Any] = Field(default_factory=dict)
    assertions: list[Assertion] = Field(default_factory=list, alias="assert")


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str | None = None
    threshold: float = Field(1.0, ge=0, le=1)
    concurrency: int = Field(4, ge=1, le=64)
    prompts: list[str | InlinePrompt] = Field(min_length=1)
    providers: list[ProviderConfig] = Field(min_length=1)
    judge: ProviderConfig | None = None
    defaults: Defaults = Field(default_factory=Defaults)
    tests: list[TestSpec] = Field(min_length=1)


class Case(BaseModel):
    """One test case after data versions are expanded: its variables and assertions."""

    key: str
    description: str
    vars: dict[str, Any]
    assertions: list[Assertion]
    threshold: float | None = None


def load_suite(source: str | Path | dict[str, Any]) -> Suite:
    """Read and check a suite from a YAML file (or an already parsed mapping)."""
    if isinstance(source, dict):
        data, where = source, "suite"
    else:
        path = Path(source)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise InvalidInput(f"cannot read suite {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise InvalidInput(f"suite {path} is not valid YAML: {yaml_problem(exc)}") from None
        where = str(path)
    if not isinstance(data, dict):
        raise InvalidInput(f"{where}: a suite is a mapping with prompts, providers and tests")
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(f"  {line}" for line in validation_problems(exc))
        raise InvalidInput(f"{where} is not a valid eval suite:\n{problems}") from None
