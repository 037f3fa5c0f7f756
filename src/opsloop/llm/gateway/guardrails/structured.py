"""Shape of the text: ``json_schema`` (the answer is JSON matching a schema) and ``length``.

**json_schema.** The schema is the rule's ``schema`` when it has one, else the request's own
``response_format`` (``{"type": "json_schema", "json_schema": {"schema": ...}}``); with
``{"type": "json_object"}`` or no schema at all, the answer must be a JSON value (an object for
``json_object``). An answer that fails gets one re-ask (``reask: true``, the default): the
verdict's ``reask`` is a user message, starting with :data:`REASK_MARK`, that says what was
wrong and repeats the schema; the proxy appends the model's answer and that message to the
conversation and asks once more. The second answer is checked the same way, and because the
request then holds the mark, it gets no re-ask: the rule's action (block or flag) applies. A
schema the request sent that is not a valid JSON schema is not checked (the decision says so):
the answer is already paid for, and the provider accepted the schema.

**length.** ``max_chars`` / ``max_words`` of the answer (output stage) or of all the
messages' text together (input stage).
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from opsloop.llm.gateway.guardrails.base import Outcome
from opsloop.llm.gateway.guardrails.base import Rule
from opsloop.llm.gateway.guardrails.base import message_texts
from opsloop.llm.gateway.guardrails.base import short
from opsloop.llm.gateway.guardrails.config import JsonSchemaSpec
from opsloop.llm.gateway.guardrails.config import LengthSpec

__all__ = ["REASK_MARK", "JsonSchemaRule", "LengthRule"]

REASK_MARK = "[opsloop guardrail: json_schema]"


def _request_schema(body: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """The schema ``response_format`` asks for, and whether it asks for an object at least."""
    response_format = body.get("response_format")
    if not isinstance(response_format, dict):
        return None, False
    if response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return (schema if isinstance(schema, dict) else None), True
    return None, response_format.get("type") == "json_object"


def _asked_before(body: dict[str, Any]) -> bool:
    return any(text.startswith(REASK_MARK) for _, text in message_texts(body, ["user"]))


class JsonSchemaRule(Rule):
    def __init__(self, spec: JsonSchemaSpec) -> None:
        super().__init__(spec)
        self.schema = spec.json_schema
        self.reask = spec.reask
        self._validator = (
            jsonschema.validators.validator_for(self.schema)(self.schema) if self.schema else None
        )

    def _problems(self, body: dict[str, Any], text: str) -> tuple[list[str], Any]:
        """What is wrong with ``text`` (empty when nothing), and the schema it was held to."""
        schema, want_object = (self.schema, True) if self.schema else _request_schema(body)
        try:
            value = json.loads(text)
        except ValueError as exc:
            return [f"not JSON ({exc.msg} at character {exc.pos})"], schema
        if schema is None:
            ok = not want_object or isinstance(value, dict)
            return ([] if ok else ["a JSON object was asked for"]), schema
        validator = self._validator
        if validator is None:
            try:
                cls = jsonschema.validators.validator_for(schema)
                cls.check_schema(schema)
            except jsonschema.SchemaError:
                return [], None
            validator = cls(schema)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        return [f"at {e.json_path}: {short(e.message, 120)}" for e in errors[:3]], schema

    async def check(self, body: dict[str, Any], text: str | None) -> Outcome:
        problems, schema = self._problems(body, text or "")
        if not problems:
            checked = "matches the schema" if schema is not None else "is valid JSON"
            return Outcome(False, f"the answer {checked}")
        reason = "; ".join(problems)
        if not self.reask or _asked_before(body):
            return Outcome(True, reason)
        wanted = f"this JSON schema: {json.dumps(schema)}" if schema is not None else "JSON"
        reask = (
            f"{REASK_MARK} Your previous answer was not valid: {reason}. Answer again with only "
            f"a JSON value, no prose and no code fence, that matches {wanted}"
        )
        return Outcome(True, reason, reask=reask)


class LengthRule(Rule):
    def __init__(self, spec: LengthSpec) -> None:
        super().__init__(spec)
        self.max_chars = spec.max_chars
        self.max_words = spec.max_words

    async def check(self, body: dict[str, Any], text: str | None) -> Outcome:
        if self.stage == "output":
            what, texts = "the answer", [text or ""]
        else:
            what, texts = "the messages", [t for _, t in message_texts(body)]
        chars = sum(len(t) for t in texts)
        if self.max_chars is not None and chars > self.max_chars:
            return Outcome(True, f"{what}: {chars:,} characters, over {self.max_chars:,}")
        if self.max_words is not None:
            words = sum(len(t.split()) for t in texts)
            if words > self.max_words:
                return Outcome(True, f"{what}: {words:,} words, over {self.max_words:,}")
        return Outcome(False, f"{what}: {chars:,} characters, within the limits")
