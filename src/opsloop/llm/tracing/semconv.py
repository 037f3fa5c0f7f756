"""Reading OpenTelemetry spans written to the GenAI semantic conventions, to OpenInference's,
or by opsloop's own SDK, into :class:`SpanRecord` fields, and writing records back out.

The first attribute present wins, in the order listed: opsloop's own keys, then the current
``gen_ai.*`` names, their deprecated predecessors, then OpenInference's. Attributes that were
read into a field are not kept twice; everything else stays in ``attributes``.
"""

from __future__ import annotations

import json
from typing import Any

from opsloop.kernel.bounds import INT64_MAX
from opsloop.kernel.bounds import INT64_MIN
from opsloop.kernel.bounds import is_ascii_int
from opsloop.llm.tracing.records import KINDS
from opsloop.llm.tracing.records import SpanRecord
from opsloop.llm.tracing.records import to_text

__all__ = ["OPSLOOP", "otel_attributes", "record_from_otel"]

OPSLOOP = "opsloop."
_MODEL = ("opsloop.model", "gen_ai.response.model", "gen_ai.request.model", "llm.model_name",
          "embedding.model_name")  # fmt: skip
_INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                 "llm.token_count.prompt")  # fmt: skip
_OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                  "llm.token_count.completion")  # fmt: skip
_TOTAL_TOKENS = ("gen_ai.usage.total_tokens", "llm.token_count.total")
_COST = ("opsloop.cost", "gen_ai.usage.cost", "llm.cost.total")
_INPUT = ("opsloop.input", "input.value", "gen_ai.input.messages", "gen_ai.prompt")
_OUTPUT = ("opsloop.output", "output.value", "gen_ai.output.messages", "gen_ai.completion")
_USER = ("opsloop.user_id", "user.id", "enduser.id", "langfuse.user.id")
_SESSION = ("opsloop.session_id", "session.id", "gen_ai.conversation.id", "langfuse.session.id")
_TAGS = ("opsloop.tags", "tag.tags", "langfuse.trace.tags")
_KIND_KEYS = ("opsloop.span.kind", "openinference.span.kind")
_OPERATION_KINDS = {
    "chat": "llm", "text_completion": "llm", "generate_content": "llm", "completion": "llm",
    "embeddings": "embedding", "execute_tool": "tool", "invoke_agent": "agent",
    "create_agent": "agent",
}  # fmt: skip
_MESSAGE_LISTS = {"input": "llm.input_messages.", "output": "llm.output_messages."}


def _first(attrs: dict[str, Any], keys: tuple[str, ...]) -> tuple[str | None, Any]:
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return key, value
    return None, None


def _int(value: Any) -> int | None:
    """A whole number the store can hold (64-bit), or None: an attribute that is no such
    number (text, infinity, 2**70) is kept among the span's attributes, not in a column."""
    try:
        number = int(value) if value is not None else None
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number is None or INT64_MIN <= number <= INT64_MAX else None


def _check_time(value: Any, what: str) -> int:
    """An OTLP time (nanoseconds since the epoch, unsigned 64-bit on the wire) the store can
    hold; anything else refuses the span (ValueError, which the decoders report per span)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
        raise ValueError(f"{what} {value!r} is not a time in nanoseconds up to 2**63-1")
    return value


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _kind(attrs: dict[str, Any]) -> str:
    _, declared = _first(attrs, _KIND_KEYS)
    if isinstance(declared, str) and declared.lower() in KINDS:
        return declared.lower()
    operation = attrs.get("gen_ai.operation.name")
    if isinstance(operation, str):
        return _OPERATION_KINDS.get(operation, "span")
    return "llm" if _first(attrs, _MODEL)[1] is not None else "span"


def _messages(attrs: dict[str, Any], prefix: str, used: set[str]) -> str | None:
    """OpenInference's flattened ``llm.input_messages.0.message.role`` keys as one JSON list."""
    messages: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if not is_ascii_int(index):
            continue
        used.add(key)
        field_name = rest.removeprefix("message.")
        messages.setdefault(int(index), {})[field_name] = value
    if not messages:
        return None
    return json.dumps([messages[i] for i in sorted(messages)], ensure_ascii=False)


def _events_text(events: list[dict[str, Any]], names: tuple[str, ...]) -> str | None:
    """Prompt and completion carried as span events (older gen_ai instrumentations)."""
    found = [e.get("attributes", {}) for e in events if e.get("name") in names]
    if not found:
        return None
    return json.dumps(found, ensure_ascii=False, default=repr)


def _tags(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v is not None and str(v)]
    return []


def record_from_otel(
    *,
    trace_id: str,
    span_id: str,
    parent_span_id: str | None,
    name: str,
    start_ns: int,
    end_ns: int,
    status_code: int,
    status_message: str | None,
    attributes: dict[str, Any],
    events: list[dict[str, Any]],
    resource: dict[str, Any],
) -> SpanRecord:
    """One OpenTelemetry span (already decoded into plain values) as a ``SpanRecord``."""
    used: set[str] = set()

    def take(keys: tuple[str, ...]) -> Any:
        key, value = _first(attributes, keys)
        if key is not None:
            used.add(key)
        return value

    def take_int(keys: tuple[str, ...]) -> int | None:
        key, value = _first(attributes, keys)
        number = _int(value)
        if key is not None and number is not None:  # else it stays among the attributes
            used.add(key)
        return number

    start_ns, end_ns = _check_time(start_ns, "start time"), _check_time(end_ns, "end time")
    for event in events:
        event["time_ns"] = _check_time(event.get("time_ns"), "event time")
    kind = _kind(attributes)
    used.update(k for k in _KIND_KEYS if k in attributes)
    input_tokens = take_int(_INPUT_TOKENS)
    output_tokens = take_int(_OUTPUT_TOKENS)
    total_tokens = take_int(_TOTAL_TOKENS)
    if total_tokens is None and (input_tokens is not None or output_tokens is not None):
        total_tokens = (input_tokens or 0) + (output_tokens or 0)
    input_value = to_text(take(_INPUT)) or _messages(attributes, _MESSAGE_LISTS["input"], used)
    output_value = to_text(take(_OUTPUT)) or _messages(attributes, _MESSAGE_LISTS["output"], used)
    if input_value is None:
        input_value = _events_text(
            events, ("gen_ai.user.message", "gen_ai.system.message", "gen_ai.content.prompt")
        )
    if output_value is None:
        output_value = _events_text(events, ("gen_ai.choice", "gen_ai.content.completion"))
    prompt_name = take(("opsloop.prompt.name",))
    prompt_version = take_int(("opsloop.prompt.version",))
    record = SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        name=name,
        start_ns=start_ns,
        end_ns=end_ns,
        kind=kind,
        status={1: "ok", 2: "error"}.get(status_code, "unset"),
        status_message=status_message or None,
        service=_string(resource.get("service.name")),
        model=_string(take(_MODEL)),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=total_tokens,
        cost=_float(take(_COST)),
        input=input_value,
        output=output_value,
        user_id=_string(take(_USER)),
        session_id=_string(take(_SESSION)),
        tags=_tags(take(_TAGS)),
        prompt_name=_string(prompt_name),
        prompt_version=prompt_version,
        events=events,
    )
    record.attributes = {k: v for k, v in attributes.items() if k not in used}
    return record


def _string(value: Any) -> str | None:
    return None if value is None else str(value)[:250]


def otel_attributes(record: SpanRecord) -> dict[str, Any]:
    """The attributes that carry ``record``'s fields, for sending it as an OTLP span."""
    out: dict[str, Any] = dict(record.attributes)
    pairs = {
        "opsloop.span.kind": record.kind,
        "opsloop.model": record.model,
        "gen_ai.usage.input_tokens": record.input_tokens,
        "gen_ai.usage.output_tokens": record.output_tokens,
        "gen_ai.usage.total_tokens": record.total_tokens,
        "opsloop.cost": record.cost,
        "opsloop.input": record.input,
        "opsloop.output": record.output,
        "opsloop.user_id": record.user_id,
        "opsloop.session_id": record.session_id,
        "opsloop.tags": list(record.tags) if record.tags else None,
        "opsloop.prompt.name": record.prompt_name,
        "opsloop.prompt.version": record.prompt_version,
    }
    out.update({k: v for k, v in pairs.items() if v is not None})
    return out
