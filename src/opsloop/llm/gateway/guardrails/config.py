"""A route's ``guardrails:`` list, checked once when the route is loaded.

Each item names a ``rule``, the ``stage`` it applies to (``input``: the request before it is
sent on; ``output``: the answer) and its ``action`` (``block``, ``redact`` or ``flag``), plus the
rule's own options::

    guardrails:
      - {rule: pii, action: redact}                       # e-mails, phones... -> <EMAIL>, <PHONE>
      - {rule: injection, action: block, threshold: 0.7}
      - {rule: topics, deny: [politics, elections]}
      - {rule: banned, stage: output, words: [darn], action: redact}
      - {rule: json_schema, schema: {type: object, required: [answer]}}
      - {rule: pii_leak, action: redact}
      - {rule: grounded, min_score: 0.8}
      - {rule: length, stage: output, max_chars: 4000}

Every mistake is reported with the item's index and field, and what to write instead, as one
:class:`~opsloop.errors.InvalidInput` line; unknown rule names and options get the closest
known one suggested (typos in YAML are the common case).
"""

from __future__ import annotations

import difflib
import re
from typing import Any
from typing import ClassVar
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError
from pydantic import field_validator
from pydantic import model_validator

from opsloop.errors import InvalidInput

__all__ = ["RULES", "RuleSpec", "parse_rules"]

Stage = Literal["input", "output"]
Action = Literal["block", "redact", "flag"]
_INPUT_ROLES = ["system", "user", "assistant", "tool"]


class RuleSpec(BaseModel):
    """What every rule has; ``name`` (default: the rule) labels its decisions on the span."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    STAGES: ClassVar[tuple[str, ...]] = ("input", "output")
    ACTIONS: ClassVar[tuple[str, ...]] = ("block", "flag")
    DEFAULT_ACTION: ClassVar[str] = "block"
    # Fields of which a rule needs at least one (field: how to write it), else it checks nothing.
    ONE_OF: ClassVar[dict[str, str]] = {}

    rule: str
    stage: Stage | None = None
    action: Action | None = None
    name: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _stage_and_action(self) -> RuleSpec:
        if self.stage is not None and self.stage not in self.STAGES:
            other = {"pii": " (use pii_leak for answers)", "pii_leak": " (use pii for requests)"}
            raise ValueError(
                f"{self.rule} applies to the {self.STAGES[0]} stage only, not {self.stage}"
                f"{other.get(self.rule, '')}"
            )
        if self.action is not None and self.action not in self.ACTIONS:
            raise ValueError(
                f"{self.rule} cannot {self.action}; its actions: {', '.join(self.ACTIONS)}"
            )
        object.__setattr__(self, "stage", self.stage or self.STAGES[0])
        object.__setattr__(self, "action", self.action or self.DEFAULT_ACTION)
        return self

    @model_validator(mode="after")
    def _some(self) -> RuleSpec:
        if self.ONE_OF and not any(getattr(self, field) for field in self.ONE_OF):
            raise ValueError(f"give {' or '.join(self.ONE_OF.values())} (or both)")
        return self

    @property
    def label(self) -> str:
        return self.name or self.rule


def _keywords(values: list[str]) -> list[str]:
    cleaned = [v.strip() for v in values]
    if any(not v for v in cleaned):
        raise ValueError("an empty keyword matches everything: remove it")
    return cleaned


class PiiSpec(RuleSpec):
    """PII in the request's messages (the governance recognizers); ``redact`` puts ``<EMAIL>``..."""

    STAGES = ("input",)
    ACTIONS = ("redact", "block", "flag")
    DEFAULT_ACTION = "redact"
    rule: Literal["pii"]
    entities: list[str] | None = None
    roles: list[str] = Field(default_factory=lambda: list(_INPUT_ROLES))

    @field_validator("entities")
    @classmethod
    def _entities(cls, value: list[str] | None) -> list[str] | None:
        from opsloop.governance.pii import check_entities

        try:
            return None if value is None else list(check_entities(value))
        except InvalidInput as exc:
            raise ValueError(exc.message) from None


class PiiLeakSpec(PiiSpec):
    """PII in the answer."""

    STAGES = ("output",)
    rule: Literal["pii_leak"]  # type: ignore[assignment]


class InjectionSpec(RuleSpec):
    """Prompt injection: tier 1 patterns, then tier 2 a classifier (built in, or ``model``)."""

    STAGES = ("input",)
    rule: Literal["injection"]
    threshold: float = Field(0.5, gt=0, lt=1)
    tiers: list[Literal["rules", "classifier"]] = Field(
        default_factory=lambda: ["rules", "classifier"], min_length=1
    )
    model: str | None = Field(None, description="an ONNX text classifier replacing tier 2's")
    positive_class: int | str = 1
    roles: list[str] = Field(default_factory=lambda: ["user", "tool"])


class TopicsSpec(RuleSpec):
    """Keywords: ``deny`` any of them, or ``allow`` only text that mentions one of them."""

    ONE_OF = {"allow": "allow: [keywords]", "deny": "deny: [keywords]"}
    rule: Literal["topics"]
    allow: list[str] = Field(default_factory=list)
    deny: list[str] = Field(default_factory=list)

    @field_validator("allow", "deny")
    @classmethod
    def _no_empty(cls, value: list[str]) -> list[str]:
        return _keywords(value)


class BannedSpec(RuleSpec):
    """Banned whole ``words`` (any case) and regular expression ``patterns``."""

    ACTIONS = ("block", "redact", "flag")
    ONE_OF = {"words": "words: [...]", "patterns": "patterns: [regex, ...]"}
    rule: Literal["banned"]
    words: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    replacement: str = "<BANNED>"

    @field_validator("words")
    @classmethod
    def _no_empty(cls, value: list[str]) -> list[str]:
        return _keywords(value)

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for i, pattern in enumerate(value):
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"pattern {i} ({pattern!r}) is not a regular expression: {exc}"
                ) from None
            if compiled.search(""):
                raise ValueError(f"pattern {i} ({pattern!r}) matches empty text: make it stricter")
        return value


class JsonSchemaSpec(RuleSpec):
    """The answer is JSON matching ``schema`` (default: the request's ``response_format``)."""

    STAGES = ("output",)
    rule: Literal["json_schema"]
    json_schema: dict[str, Any] | None = Field(None, alias="schema")
    reask: bool = True

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        import jsonschema

        if value is not None:
            try:
                jsonschema.validators.validator_for(value).check_schema(value)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"not a valid JSON schema: {exc.message}") from None
        return value


class GroundedSpec(RuleSpec):
    """Share of the answer's claims the request's context supports (the eval metric)."""

    STAGES = ("output",)
    rule: Literal["grounded"]
    min_score: float = Field(0.8, ge=0, le=1)
    similarity: float = Field(0.7, gt=0, le=1)
    word_recall: float = Field(0.8, gt=0, le=1)
    require_context: bool = False


class LengthSpec(RuleSpec):
    """At most ``max_chars`` characters / ``max_words`` words (the answer, or all messages)."""

    STAGES = ("output", "input")
    ONE_OF = {"max_chars": "max_chars", "max_words": "max_words"}
    rule: Literal["length"]
    max_chars: int | None = Field(None, gt=0)
    max_words: int | None = Field(None, gt=0)


RULES: dict[str, type[RuleSpec]] = {
    "pii": PiiSpec,
    "injection": InjectionSpec,
    "topics": TopicsSpec,
    "banned": BannedSpec,
    "json_schema": JsonSchemaSpec,
    "pii_leak": PiiLeakSpec,
    "grounded": GroundedSpec,
    "length": LengthSpec,
}


def parse_rules(route: str, raw: Any) -> list[RuleSpec]:
    """A route's raw ``guardrails:`` list as checked specs, in order.

    Raises:
        InvalidInput: naming the route, the item's index and field, and what to write instead.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidInput(
            f"route {route!r}: guardrails must be a list of rules, got {type(raw).__name__}"
        )
    specs = []
    for index, item in enumerate(raw):
        where = f"route {route!r}, guardrails[{index}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where}: a rule is a mapping like {{rule: pii}}, got {item!r}")
        name = item.get("rule")
        if name not in RULES:
            near = difflib.get_close_matches(str(name), list(RULES), n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise InvalidInput(f"{where}: unknown rule {name!r}; {hint}rules: {', '.join(RULES)}")
        spec_class = RULES[name]
        try:
            specs.append(spec_class.model_validate(item))
        except ValidationError as exc:
            problems = [_problem(error, spec_class) for error in exc.errors()[:3]]
            raise InvalidInput(f"{where} ({name}){'; '.join(problems)}") from None
    return specs


def _problem(error: Any, spec_class: type[RuleSpec]) -> str:
    """One pydantic error as ``.field: what to fix``; an unknown option gets the closest known
    one suggested (``entitys`` -> ``entities``)."""
    field = ".".join(str(p) for p in error.get("loc", ()))
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        options = [f.alias or n for n, f in spec_class.model_fields.items()]
        near = difflib.get_close_matches(field, options, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        message = f"unknown option; {hint}options: {', '.join(options)}"
    return f".{field}: {message}" if field else f": {message}"
