"""Small pure helpers of the proxy: reading a request body, estimating and pricing tokens,
and writing a whole answer as a stream (a cache hit, or a guarded route's checked answer).

Nothing here validates an upstream's whole response: the proxy reads the few fields it needs
(usage, the first choice's text) and passes the bytes on as they came.
"""

from __future__ import annotations

import json
import re
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.llm.gateway.ports import GuardDecision
from opsloop.llm.gateway.spans import messages_text
from opsloop.llm.tracing.pricing import PriceTable

__all__ = [
    "DEFAULT_MAX_COMPLETION",
    "answer_text",
    "as_sse",
    "blocked_error",
    "cost_of",
    "estimate_usage",
    "parse_body",
    "parse_traceparent",
    "replace_text",
    "usage_tokens",
    "without_context",
]

DEFAULT_MAX_COMPLETION = 4096  # completion tokens reserved for a request without max_tokens
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


def parse_body(raw: bytes, *, chat: bool) -> dict[str, Any]:
    """The request's JSON object, checked as far as the gateway needs it.

    Raises:
        InvalidInput: Not a JSON object, or a chat request without ``model``/``messages``
            (a request naming a registered ``prompt`` may leave them to the prompt).
    """
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidInput(
            "'model' must be a string: the name of a route", details={"param": "model"}
        )
    if chat:
        if "prompt" in body:
            if not isinstance(body["prompt"], str) or "@" not in body["prompt"]:
                raise InvalidInput(
                    "'prompt' names a registered prompt as NAME@LABEL or NAME@VERSION",
                    details={"param": "prompt"},
                )
            if not isinstance(body.get("variables", {}), dict):
                raise InvalidInput("'variables' must be an object", details={"param": "variables"})
        elif not isinstance(body.get("messages"), list) or not body["messages"]:
            raise InvalidInput(
                "'messages' must be a non-empty list of {role, content} objects",
                details={"param": "messages"},
            )
        if not isinstance(body.get("stream", False), bool):
            raise InvalidInput("'stream' must be true or false", details={"param": "stream"})
    elif "input" not in body:
        raise InvalidInput("'input' is required: a string or a list", details={"param": "input"})
    if model is None and not (chat and "prompt" in body):
        raise InvalidInput("'model' is required: the name of a route", details={"param": "model"})
    return body


def parse_traceparent(header: str | None) -> tuple[str | None, str | None]:
    """The trace id and parent span id of a W3C ``traceparent`` header, if it is one."""
    if header:
        found = _TRACEPARENT.fullmatch(header.strip())
        if found and found.group(1) != "0" * 32:
            return found.group(1), found.group(2)
    return None, None


def estimate_usage(body: dict[str, Any]) -> tuple[int, int]:
    """Prompt and completion tokens to reserve before the call: about four characters a token
    in, and the answer's ``max_tokens`` out, else :data:`DEFAULT_MAX_COMPLETION` (the output
    cap most chat models default to). The completion is priced at the output rate, so a call
    that keeps to its ``max_tokens`` never costs more than its reservation."""
    given = len(messages_text(body)) // 4 + 1
    most = body.get("max_completion_tokens") or body.get("max_tokens")
    return given, (most if isinstance(most, int) and most > 0 else DEFAULT_MAX_COMPLETION)


def usage_tokens(usage: Any) -> tuple[int | None, int | None]:
    """Prompt and completion tokens of an OpenAI ``usage`` object (None when absent)."""
    if not isinstance(usage, dict):
        return None, None
    given, made = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (given if isinstance(given, int) else None, made if isinstance(made, int) else None)


def cost_of(prices: PriceTable, model: str, given: int | None, made: int | None) -> float | None:
    """US dollars for ``model``'s tokens by the price table, None for a model without a price."""
    price = prices.find(model)
    if price is None:
        return None
    return (
        (given or 0) * price.input_per_mtok / 1e6
        + (made or 0) * price.output_per_mtok / 1e6
        + price.per_request
    )


def answer_text(data: dict[str, Any]) -> str:
    """The first choice's message text ("" when it only called tools)."""
    choices = data.get("choices") or [{}]
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def replace_text(data: dict[str, Any], text: str) -> bytes:
    """``data`` with its first choice's text replaced (a guardrail redacted it), as JSON."""
    data["choices"][0]["message"]["content"] = text
    return json.dumps(data, ensure_ascii=False).encode()


def as_sse(data: dict[str, Any], *, include_usage: bool) -> list[bytes]:
    """A whole ``chat.completion`` as the events of a stream that carried it."""
    base = {
        "id": data.get("id", "chatcmpl-opsloop"),
        "object": "chat.completion.chunk",
        "created": data.get("created", 0),
        "model": data.get("model", ""),
    }
    events = []
    for choice in data.get("choices") or ():
        message = dict(choice.get("message") or {})
        calls = message.get("tool_calls")
        if calls:
            message["tool_calls"] = [{"index": i, **call} for i, call in enumerate(calls)]
        delta = {k: v for k, v in message.items() if v is not None}
        chunk = {
            **base,
            "choices": [{"index": choice.get("index", 0), "delta": delta, "finish_reason": None}],
        }
        done = {
            **base,
            "choices": [
                {
                    "index": choice.get("index", 0),
                    "delta": {},
                    "finish_reason": choice.get("finish_reason", "stop"),
                }
            ],
        }
        events += [chunk, done]
    if include_usage and data.get("usage"):
        events.append({**base, "choices": [], "usage": data["usage"]})
    return [b"data: " + json.dumps(e, ensure_ascii=False).encode() + b"\n\n" for e in events] + [
        b"data: [DONE]\n\n"
    ]


def without_context(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without the guardrails' ``context`` (the grounded rule's documents), which is
    not an OpenAI field: an upstream could refuse it."""
    if "context" not in body:
        return body
    return {key: value for key, value in body.items() if key != "context"}


def blocked_error(decision: GuardDecision) -> InvalidInput:
    """The 400 a blocking guardrail answers, naming the rule and its reason."""
    return InvalidInput(
        f"blocked by guardrail '{decision.rule}' ({decision.stage}): "
        f"{decision.reason or 'the rule matched'}",
        details={"param": decision.rule, "code": "guardrail_blocked"},
    )
