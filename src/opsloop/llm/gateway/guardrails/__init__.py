"""Guardrails of a gateway route: rules on the request (input) and on the answer (output).

``build_guard(route, rules)`` turns a route's ``guardrails:`` list into the
:class:`~opsloop.llm.gateway.ports.Guard` the proxy calls. One module per family of rules:

- :mod:`.pii`: PII in requests (``pii``) and answers (``pii_leak``), governance's recognizers;
- :mod:`.injection`: prompt injection, tier 1 :mod:`.patterns` and tier 2 :mod:`.classifier`
  (trained on :mod:`.dataset`, the labelled set in ``data/``; or a user's ONNX model);
- :mod:`.lists`: ``topics`` (allow / deny keywords) and ``banned`` (words, patterns);
- :mod:`.structured`: ``json_schema`` (with one re-ask) and ``length``;
- :mod:`.grounded`: the answer against the context the request supplies.

:mod:`.config` checks the list; :mod:`.guard` runs it and applies each rule's action.
"""

from opsloop.llm.gateway.guardrails.config import RULES
from opsloop.llm.gateway.guardrails.config import RuleSpec
from opsloop.llm.gateway.guardrails.config import parse_rules
from opsloop.llm.gateway.guardrails.guard import RouteGuard
from opsloop.llm.gateway.guardrails.guard import build_guard

__all__ = ["RULES", "RouteGuard", "RuleSpec", "build_guard", "parse_rules"]
