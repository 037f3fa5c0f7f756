"""Traces as fine-tuning rows, in the conversational formats TRL and OpenAI's fine-tuning read.

Supervised (SFT): ``{"messages": [...the prompt messages..., {"role": "assistant", ...}]}``.
Preference (DPO and kin): ``{"prompt": [...], "chosen": [assistant turn], "rejected": [...]}``.

A trace's input becomes the prompt messages: a stored list of ``{"role", "content"}`` is kept
as it is, ``{"messages": [...]}`` is unwrapped, and anything else is the user turn. Its output
becomes the assistant turn: a string as is, the last message's content for a message list,
``content``/``text``/``answer`` of an object, else the JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

__all__ = ["assistant_text", "preference_rows", "prompt_messages", "sft_rows"]


def _parse(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)
    )


def prompt_messages(input_text: str | None) -> list[dict[str, Any]] | None:
    value = _parse(input_text)
    if value is None or value == "":
        return None
    if isinstance(value, dict) and _is_messages(value.get("messages")):
        value = value["messages"]
    if _is_messages(value):
        return [{"role": m["role"], "content": m["content"]} for m in value]
    if isinstance(value, dict) and len(value) == 1:
        (only,) = value.values()  # one argument of an @observe'd function: its value
        if isinstance(only, str):
            return [{"role": "user", "content": only}]
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return [{"role": "user", "content": text}]


def assistant_text(output_text: str | None) -> str | None:
    value = _parse(output_text)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if _is_messages(value):
        return str(value[-1]["content"])
    if isinstance(value, dict):
        for key in ("content", "text", "answer", "output"):
            if isinstance(value.get(key), str):
                return str(value[key])
    return json.dumps(value, ensure_ascii=False)


def sft_rows(traces: Iterable[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """One chat per trace with both an input and an output; also the trace ids used."""
    rows, used = [], []
    for trace in traces:
        prompt, answer = prompt_messages(trace.input), assistant_text(trace.output)
        if prompt is None or answer is None:
            continue
        rows.append({"messages": [*prompt, {"role": "assistant", "content": answer}]})
        used.append(trace.trace_id)
    return rows, used


def preference_rows(
    traces: Iterable[Any], score: str, min_margin: float = 0.0
) -> tuple[list[dict[str, Any]], list[str]]:
    """Best vs worst output per distinct prompt, ranked by numeric/boolean score ``score``."""
    groups: dict[str, list[tuple[float, str, str]]] = {}
    prompts: dict[str, list[dict[str, Any]]] = {}
    for trace in traces:
        value = trace.scores.get(score)
        prompt, answer = prompt_messages(trace.input), assistant_text(trace.output)
        if not isinstance(value, int | float) or prompt is None or answer is None:
            continue
        key = json.dumps(prompt, sort_keys=True, ensure_ascii=False)
        prompts[key] = prompt
        groups.setdefault(key, []).append((float(value), answer, trace.trace_id))
    rows, used = [], []
    for key, scored in groups.items():
        scored.sort(key=lambda item: item[0])
        worst, best = scored[0], scored[-1]
        margin = best[0] - worst[0]
        if margin <= 0 or margin < min_margin or best[1] == worst[1]:
            continue
        rows.append(
            {
                "prompt": prompts[key],
                "chosen": [{"role": "assistant", "content": best[1]}],
                "rejected": [{"role": "assistant", "content": worst[1]}],
                "score_chosen": best[0],
                "score_rejected": worst[0],
            }
        )
        used.extend([best[2], worst[2]])
    return rows, used
