"""A route's guardrails as one :class:`~opsloop.llm.gateway.ports.Guard`.

Rules run in the order the route lists them, input rules on the request and output rules on
the answer. Each rule's outcome becomes a :class:`GuardDecision`, triggered or not, and its
action applies at once:

- ``redact``: what the rule redacted is what later rules, and the model, see;
- ``flag``: recorded only;
- ``block``: the verdict's ``blocked`` is this decision and the check ends there (the rules
  after it are not run: the request is refused, so their work would be spent for nothing). The
  proxy answers 4xx with the decision's rule name and reason.

An output rule that asks for a re-ask (``json_schema``) ends the check too, with the verdict's
``reask`` set and nothing blocked: the answer is about to be replaced by the model's second
one, which is checked in full.
"""

from __future__ import annotations

from typing import Any

from opsloop.errors import InvalidInput
from opsloop.llm.gateway.guardrails.base import Outcome
from opsloop.llm.gateway.guardrails.base import Rule
from opsloop.llm.gateway.guardrails.config import RuleSpec
from opsloop.llm.gateway.guardrails.config import parse_rules
from opsloop.llm.gateway.guardrails.grounded import GroundedRule
from opsloop.llm.gateway.guardrails.injection import InjectionRule
from opsloop.llm.gateway.guardrails.lists import BannedRule
from opsloop.llm.gateway.guardrails.lists import TopicsRule
from opsloop.llm.gateway.guardrails.pii import PiiLeakRule
from opsloop.llm.gateway.guardrails.pii import PiiRule
from opsloop.llm.gateway.guardrails.structured import JsonSchemaRule
from opsloop.llm.gateway.guardrails.structured import LengthRule
from opsloop.llm.gateway.ports import GuardDecision
from opsloop.llm.gateway.ports import GuardVerdict

__all__ = ["RouteGuard", "build_guard"]

_RULE_CLASSES: dict[str, type[Rule]] = {
    "pii": PiiRule,
    "injection": InjectionRule,
    "topics": TopicsRule,
    "banned": BannedRule,
    "json_schema": JsonSchemaRule,
    "pii_leak": PiiLeakRule,
    "grounded": GroundedRule,
    "length": LengthRule,
}


class RouteGuard:
    """The rules of one route (see the module docstring); safe to share across requests.

    Example:
        >>> import asyncio
        >>> guard = build_guard("support", [{"rule": "pii"}])
        >>> body = {"messages": [{"role": "user", "content": "mail me at ann@example.com"}]}
        >>> asyncio.run(guard.check_input(body)).body["messages"][0]["content"]
        'mail me at <EMAIL>'
    """

    def __init__(self, route: str, rules: list[Rule]) -> None:
        self.route = route
        self.input_rules = [r for r in rules if r.stage == "input"]
        self.output_rules = [r for r in rules if r.stage == "output"]

    @staticmethod
    def _decision(rule: Rule, outcome: Outcome) -> GuardDecision:
        return GuardDecision(
            rule.name,
            rule.stage,  # type: ignore[arg-type]  # the spec's Literal, set by its validator
            rule.action,  # type: ignore[arg-type]
            outcome.triggered,
            outcome.reason,
            outcome.score,
        )

    async def check_input(self, body: dict[str, Any]) -> GuardVerdict:
        verdict = GuardVerdict(body=body)
        for rule in self.input_rules:
            if self._settle(verdict, rule, await rule.check(verdict.body or {}, None)):
                break
        return verdict

    async def check_output(self, body: dict[str, Any], text: str) -> GuardVerdict:
        verdict = GuardVerdict(body=body, text=text)
        for rule in self.output_rules:
            if self._settle(verdict, rule, await rule.check(body, verdict.text)):
                break
        return verdict

    def _settle(self, verdict: GuardVerdict, rule: Rule, outcome: Outcome) -> bool:
        """Record ``rule``'s decision in ``verdict`` and apply its action (see the module
        docstring); True when the check ends here (a block, or a re-ask)."""
        decision = self._decision(rule, outcome)
        verdict.decisions.append(decision)
        if not outcome.triggered:
            return False
        if outcome.reask is not None:
            verdict.reask = outcome.reask
            return True
        if rule.action == "block":
            verdict.blocked = decision
            return True
        if rule.action == "redact":  # an input rule redacts the body, an output rule the text
            if outcome.body is not None:
                verdict.body = outcome.body
            if outcome.text is not None:
                verdict.text = outcome.text
        return False


def build_rule(spec: RuleSpec) -> Rule:
    """The rule a checked spec describes."""
    return _RULE_CLASSES[spec.rule](spec)


def build_guard(route_name: str, rules: list[dict[str, Any]] | None) -> RouteGuard | None:
    """The guard of a route's raw ``guardrails:`` list, or None when it lists no rule (the
    proxy then skips guarding altogether).

    Raises:
        InvalidInput: a rule is misconfigured, or its ONNX model cannot be used; the message
            names the route, the rule's index and field, and what to write instead.
    """
    specs = parse_rules(route_name, rules)
    built = []
    for index, spec in enumerate(specs):
        try:
            built.append(build_rule(spec))
        except InvalidInput as exc:
            raise InvalidInput(
                f"route {route_name!r}, guardrails[{index}] ({spec.rule}).{exc.message}"
            ) from None
    return RouteGuard(route_name, built) if built else None
