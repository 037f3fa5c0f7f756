"""Each guardrail rule with each of its actions, through the Guard the proxy calls.

Real components throughout: governance's PII recognizers, jsonschema, the MiniLM model of the
groundedness metric (offline package). No network: ``no_network`` records any attempt.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from opsloop.llm.gateway.guardrails import RouteGuard
from opsloop.llm.gateway.guardrails import build_guard
from opsloop.llm.gateway.guardrails.structured import REASK_MARK
from opsloop.llm.gateway.ports import GuardVerdict
from tests.no_network import no_network  # noqa: F401  (fixture)


def chat(*contents: str, role: str = "user", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": role, "content": c} for c in contents], **extra}


def guard(*rules: dict[str, Any]) -> RouteGuard:
    built = build_guard("support", list(rules))
    assert built is not None
    return built


def check_in(g: RouteGuard, body: dict[str, Any]) -> GuardVerdict:
    return asyncio.run(g.check_input(body))


def check_out(g: RouteGuard, body: dict[str, Any], text: str) -> GuardVerdict:
    return asyncio.run(g.check_output(body, text))


def test_no_rules_means_no_guard() -> None:
    assert build_guard("support", []) is None
    assert build_guard("support", None) is None


# -- pii ---------------------------------------------------------------------------------------
def test_pii_redacts_with_placeholders_and_keeps_the_callers_body(no_network: list[str]) -> None:  # noqa: F811
    body = chat("Mail ann.lee@example.com or call 212-555-0199.", "card 4111 1111 1111 1111")
    verdict = check_in(guard({"rule": "pii"}), body)
    assert verdict.body is not None
    texts = [m["content"] for m in verdict.body["messages"]]
    assert texts == ["Mail <EMAIL> or call <PHONE>.", "card <CREDIT_CARD>"]
    assert body["messages"][0]["content"].startswith("Mail ann.lee@")  # not changed in place
    (decision,) = verdict.decisions
    assert (decision.rule, decision.stage, decision.action, decision.triggered) == (
        "pii", "input", "redact", True,
    )  # fmt: skip
    assert "EMAIL_ADDRESS" in decision.reason and "ann.lee" not in decision.reason
    assert verdict.blocked is None
    assert no_network == []


def test_pii_in_content_parts_and_only_in_chosen_roles() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Escalate to ops@example.com."},
            {"role": "user", "content": [{"type": "text", "text": "I am bob@example.org"},
                                         {"type": "image_url", "image_url": {"url": "x"}}]},
        ]
    }  # fmt: skip
    verdict = check_in(guard({"rule": "pii", "roles": ["user"]}), body)
    assert verdict.body["messages"][0]["content"] == "Escalate to ops@example.com."
    parts = verdict.body["messages"][1]["content"]
    assert parts[0]["text"] == "I am <EMAIL>" and parts[1]["type"] == "image_url"


def test_pii_block_flag_and_entities() -> None:
    body = chat("my email is ann@example.com")
    blocked = check_in(guard({"rule": "pii", "action": "block"}), body)
    assert blocked.blocked is not None and blocked.blocked.rule == "pii"
    flagged = check_in(guard({"rule": "pii", "action": "flag"}), body)
    assert flagged.blocked is None and flagged.body is body and flagged.decisions[0].triggered
    only_phones = check_in(guard({"rule": "pii", "entities": ["phone"]}), body)
    assert not only_phones.decisions[0].triggered and only_phones.body is body


def test_pii_leak_in_the_answer() -> None:
    redact = check_out(
        guard({"rule": "pii_leak", "action": "redact"}), chat("hi"), "SSN 123-45-6789"
    )
    assert redact.text == "SSN <SSN>" and redact.decisions[0].triggered
    block = check_out(
        guard({"rule": "pii_leak", "action": "block"}), chat("hi"), "write to ann@example.com"
    )
    assert block.blocked is not None and block.blocked.stage == "output"
    clean = check_out(guard({"rule": "pii_leak"}), chat("hi"), "Nothing personal here.")
    assert clean.blocked is None and not clean.decisions[0].triggered


# -- topics and banned -------------------------------------------------------------------------
def test_topics_deny_and_allow() -> None:
    deny = guard({"rule": "topics", "deny": ["politics", "stock tips"]})
    hit = check_in(deny, chat("earlier turn about politics", "Any STOCK   tips today?"))
    assert hit.blocked is not None and "stock tips" in hit.blocked.reason
    assert check_in(deny, chat("politics was earlier", "What is my balance?")).blocked is None
    assert check_in(deny, chat("political theory")).blocked is None  # whole words only
    allow = guard({"rule": "topics", "allow": ["billing", "refund"], "action": "flag"})
    off = check_in(allow, chat("Write me a poem"))
    assert off.decisions[0].triggered and "off-topic" in off.decisions[0].reason
    assert not check_in(allow, chat("Where is my Refund?")).decisions[0].triggered
    out = guard({"rule": "topics", "stage": "output", "deny": ["competitor"]})
    assert check_out(out, chat("hi"), "Try our competitor.").blocked is not None


def test_banned_words_and_patterns_every_action() -> None:
    rule = {"rule": "banned", "words": ["darn"], "patterns": [r"(?i)\bproject\s+x\w*\b"]}
    redacted = check_in(guard({**rule, "action": "redact"}), chat("Darn, is Project Xylo late?"))
    assert redacted.body["messages"][0]["content"] == "<BANNED>, is <BANNED> late?"
    blocked = check_in(guard(rule), chat("tell me about project xeno"))
    assert blocked.blocked is not None and "project xeno" in blocked.blocked.reason
    flagged = check_in(guard({**rule, "action": "flag"}), chat("darnit is fine"))
    assert not flagged.decisions[0].triggered  # "darnit" is not the word "darn"
    answer = guard({**rule, "stage": "output", "action": "redact", "replacement": "***"})
    assert check_out(answer, chat("hi"), "well darn").text == "well ***"


# -- json_schema -------------------------------------------------------------------------------
SCHEMA = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}


def test_json_schema_valid_then_one_reask_then_block() -> None:
    g = guard({"rule": "json_schema", "schema": SCHEMA})
    body = chat("answer in JSON")
    assert check_out(g, body, '{"answer": "yes"}').decisions[0].triggered is False
    first = check_out(g, body, '{"answer": 3}')
    assert first.blocked is None and first.reask is not None
    assert first.reask.startswith(REASK_MARK) and "$.answer" in first.reask
    assert json.dumps(SCHEMA) in first.reask
    # the proxy appends the answer and the re-ask, and asks again: no second re-ask
    answered = {"role": "assistant", "content": '{"answer": 3}'}
    retry = {
        **body,
        "messages": [*body["messages"], answered, {"role": "user", "content": first.reask}],
    }
    second = check_out(g, retry, "still not JSON")
    assert second.reask is None and second.blocked is not None
    assert "not JSON" in second.blocked.reason
    assert check_out(g, retry, '{"answer": "ok"}').blocked is None


def test_json_schema_from_the_request_and_flag_without_reask() -> None:
    g = guard({"rule": "json_schema", "action": "flag", "reask": False})
    asked = chat(
        "x", response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA}}
    )
    flagged = check_out(g, asked, '{"other": 1}')
    assert flagged.reask is None and flagged.blocked is None and flagged.decisions[0].triggered
    obj = chat("x", response_format={"type": "json_object"})
    assert check_out(g, obj, "[1, 2]").decisions[0].triggered
    assert not check_out(g, obj, '{"a": 1}').decisions[0].triggered
    bad_schema = chat(
        "x", response_format={"type": "json_schema", "json_schema": {"schema": {"type": 5}}}
    )
    assert not check_out(g, bad_schema, '{"a": 1}').decisions[0].triggered


# -- length and grounded -----------------------------------------------------------------------
def test_length_of_answer_and_of_messages() -> None:
    out = guard({"rule": "length", "max_chars": 10})
    assert check_out(out, chat("hi"), "short").blocked is None
    long = check_out(out, chat("hi"), "far too long an answer")
    assert long.blocked is not None and "22 characters, over 10" in long.blocked.reason
    words = guard({"rule": "length", "stage": "input", "max_words": 5, "action": "flag"})
    flagged = check_in(words, chat("one two three", "four five six"))
    assert flagged.decisions[0].triggered and "6 words" in flagged.decisions[0].reason


def test_grounded_against_context_field_and_tagged_system_message(no_network: list[str]) -> None:  # noqa: F811
    g = guard({"rule": "grounded", "min_score": 1.0})
    context = ["The Eiffel Tower is in Paris. It was completed in 1889."]
    body = chat("Where is it?", context=context)
    ok = check_out(g, body, "The Eiffel Tower is in Paris.")
    assert ok.blocked is None and ok.decisions[0].score == 1.0
    made_up = check_out(
        g, body, "The Eiffel Tower is in Paris. It is painted bright green every spring."
    )
    assert made_up.blocked is not None and "green" in made_up.blocked.reason
    assert made_up.blocked.score == 0.5
    system = {"role": "system", "content": f"Answer from <context>{context[0]}</context>"}
    tagged = {"messages": [system, {"role": "user", "content": "When?"}]}
    assert check_out(g, tagged, "It was completed in 1889.").blocked is None
    assert no_network == []


def test_grounded_without_context() -> None:
    lenient = check_out(guard({"rule": "grounded"}), chat("hi"), "Anything.")
    assert not lenient.decisions[0].triggered and "no context" in lenient.decisions[0].reason
    strict = check_out(
        guard({"rule": "grounded", "require_context": True}), chat("hi"), "Anything."
    )
    assert strict.blocked is not None


# -- the guard: order, actions, names ----------------------------------------------------------
def test_rules_run_in_order_redaction_carries_and_block_stops() -> None:
    g = guard(
        {"rule": "pii"},
        {"rule": "banned", "words": ["EMAIL"], "action": "flag", "name": "no-placeholders"},
        {"rule": "length", "stage": "input", "max_chars": 5},
        {"rule": "topics", "deny": ["anything"]},
        {"rule": "pii_leak"},
    )
    verdict = check_in(g, chat("reach me at ann@example.com"))
    assert [d.rule for d in verdict.decisions] == ["pii", "no-placeholders", "length"]
    assert verdict.decisions[1].triggered  # it saw the redacted text
    assert verdict.blocked is verdict.decisions[2]
    assert [r.name for r in g.output_rules] == ["pii_leak"]
    untriggered = check_in(guard({"rule": "topics", "deny": ["x"]}), chat("y"))
    assert untriggered.decisions[0].triggered is False and untriggered.decisions[0].reason


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ([{"rule": "pi"}], "guardrails[0]: unknown rule 'pi'; did you mean 'pii'?"),
        ([{"rule": "pii"}, {"rule": "pii", "entitys": ["email"]}],
         "guardrails[1] (pii).entitys: unknown option; did you mean 'entities'?"),
        ([{"rule": "pii", "stage": "output"}], "use pii_leak for answers"),
        ([{"rule": "pii_leak", "stage": "input"}], "use pii for requests"),
        ([{"rule": "pii", "entities": ["emial"]}], "(pii).entities: unknown PII entity 'emial'"),
        ([{"rule": "injection", "threshold": 1.5}], "(injection).threshold: Input should be less"),
        ([{"rule": "injection", "tiers": ["regex"]}], "(injection).tiers.0:"),
        ([{"rule": "injection", "action": "redact"}], "injection cannot redact; its actions"),
        ([{"rule": "topics"}], "(topics): give allow: [keywords] or deny"),
        ([{"rule": "topics", "deny": ["ok", " "]}], "an empty keyword matches everything"),
        ([{"rule": "banned", "patterns": ["(unclosed"]}], "(banned).patterns: pattern 0"),
        ([{"rule": "banned", "patterns": ["a*"]}], "matches empty text"),
        ([{"rule": "json_schema", "schema": {"type": "bogus"}}], "(json_schema).schema: not"),
        ([{"rule": "grounded", "min_score": 2}], "(grounded).min_score"),
        ([{"rule": "length"}], "(length): give max_chars or max_words"),
        ([{"rule": "length", "max_chars": 0}], "(length).max_chars"),
        ([{"rule": "length", "max_chars": 9, "stage": "both"}], "(length).stage"),
        (["pii"], "guardrails[0]: a rule is a mapping like {rule: pii}"),
        ({"rule": "pii"}, "guardrails must be a list of rules, got dict"),
        ([{"rule": "injection", "model": "missing.onnx"}], "(injection).model: no ONNX file"),
    ],
)  # fmt: skip
def test_bad_configs_name_the_rule_field_and_fix(rules: Any, expected: str) -> None:
    from opsloop.errors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        build_guard("support", rules)
    assert caught.value.message.startswith("route 'support'")
    assert expected in caught.value.message
    assert "\n" not in caught.value.message
