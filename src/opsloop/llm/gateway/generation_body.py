"""What a locally generated chat answer is made of, apart from the model: the request read from
an OpenAI body, the prompt rendered with the tokenizer's chat template, the answer's text
decoded token by token with stop sequences held back, and the OpenAI objects sent back.

Nothing here imports torch: a body is refused (:class:`~opsloop.errors.InvalidInput`, a 400)
before it reaches the model's worker thread.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from opsloop.errors import InvalidInput

__all__ = [
    "ChatRequest",
    "Sampling",
    "TextStream",
    "chunk",
    "completion",
    "new_id",
    "parse_chat",
    "render_prompt",
    "usage",
]

_UNSUPPORTED = ("tools", "functions", "tool_choice", "function_call")
MAX_STOPS = 4  # as OpenAI's API


@dataclass(frozen=True)
class Sampling:
    """How the next token is picked. ``temperature`` 0 is greedy; ``seed`` makes sampling
    repeatable (each request draws from its own generator, so neighbours in a batch do not
    change its draws). ``max_tokens`` None means as many as the context window leaves."""

    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class ChatRequest:
    """A chat body as the local generator understands it."""

    messages: list[dict[str, str]]
    sampling: Sampling
    include_usage: bool = False  # stream_options.include_usage: one last chunk with usage


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidInput(f"{key} must be a number from {low:g} to {high:g}")
    return float(value)


def _content(message: dict[str, Any], index: int) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise InvalidInput(f"messages.{index}.content: a local model takes text parts only")
            parts.append(str(part.get("text", "")))
        return "".join(parts)
    raise InvalidInput(f"messages.{index}.content must be a string or a list of text parts")


def parse_chat(body: Any) -> ChatRequest:
    """The request in an OpenAI ``/v1/chat/completions`` body.

    Raises:
        InvalidInput: No messages, a malformed message or parameter, or something a local
            model cannot honour (tools, ``n`` > 1, logprobs, non-text content).
    """
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidInput("messages must be a non-empty list")
    parsed = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidInput(f"messages.{index} must be an object with a role")
        parsed.append({"role": message["role"], "content": _content(message, index)})
    for key in _UNSUPPORTED:
        if body.get(key):
            raise InvalidInput(f"{key} is not supported by locally served models")
    if body.get("n") not in (None, 1):
        raise InvalidInput("n must be 1 for a locally served model")
    if body.get("logprobs"):
        raise InvalidInput("logprobs are not supported by locally served models")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise InvalidInput("max_tokens must be a positive integer")
    stop = body.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if len(stops) > MAX_STOPS or not all(isinstance(s, str) and s for s in stops):
        raise InvalidInput(f"stop must be a string or a list of at most {MAX_STOPS} strings")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidInput("seed must be an integer")
    options = body.get("stream_options") or {}
    sampling = Sampling(
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
        stop=stops,
        seed=seed,
    )
    include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
    return ChatRequest(parsed, sampling, include_usage)


def render_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """The prompt's token ids: the tokenizer's chat template with the generation prompt when it
    has one; otherwise one ``role: content`` line per message and a last ``assistant:`` line,
    tokenized with the tokenizer's own special tokens (its BOS, where it adds one).

    Raises:
        InvalidInput: The template refused the messages (roles out of order, say).
    """
    if getattr(tokenizer, "chat_template", None):
        from jinja2 import TemplateError

        try:
            text = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        except (TemplateError, ValueError) as exc:
            raise InvalidInput(f"the model's chat template refused the messages: {exc}") from exc
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
    return list(tokenizer(text)["input_ids"])


class TextStream:
    """The answer's text as tokens arrive: what may be sent now, and whether a stop sequence
    ended it.

    Tokens are decoded in a short window (the last sent token and those after it), so a long
    answer costs the same per token as a short one; a window that ends in an incomplete UTF-8
    character waits for the next token. Text that could be the start of a stop sequence is held
    back until it is clear either way, so a streamed answer never shows part of a stop.
    """

    def __init__(self, tokenizer: Any, stops: tuple[str, ...]) -> None:
        self._tokenizer = tokenizer
        self._stops = stops
        self._ids: list[int] = []
        self._prefix = 0  # window start: the tokens before it are decoded for good
        self._read = 0  # tokens whose text is already in self.text
        self.text = ""
        self._sent = 0  # characters of self.text handed out

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))

    def push(self, token: int) -> tuple[str, bool]:
        """Add one token; returns the text that may be sent now and whether a stop sequence
        was found (the text then ends before it, and the answer is over)."""
        self._ids.append(token)
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.text += after[len(before) :]
            self._prefix, self._read = self._read, len(self._ids)
        found = [i for i in (self.text.find(s, self._sent) for s in self._stops) if i >= 0]
        if found:
            self.text = self.text[: min(found)]
            return self._take(len(self.text)), True
        held = max((_overlap(self.text, s) for s in self._stops), default=0)
        return self._take(len(self.text) - held), False

    def flush(self) -> str:
        """The rest of the text, at the end of an answer that no stop sequence ended."""
        head = self._decode(self._ids[self._prefix : self._read])
        self.text += self._decode(self._ids[self._prefix :])[len(head) :]
        self._prefix = self._read = len(self._ids)
        return self._take(len(self.text))

    def _take(self, end: int) -> str:
        piece = self.text[self._sent : end] if end > self._sent else ""
        self._sent = max(self._sent, end)
        return piece


def _overlap(text: str, stop: str) -> int:
    """The length of the longest end of ``text`` that is a start of ``stop``."""
    for size in range(min(len(stop) - 1, len(text)), 0, -1):
        if stop.startswith(text[-size:]):
            return size
    return 0


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def new_id() -> tuple[str, int]:
    """A completion id and its creation time, as OpenAI stamps them."""
    return f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())


def completion(
    ident: tuple[str, int], model: str, text: str, finish: str, counts: dict[str, int]
) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object."""
    return {
        "id": ident[0],
        "object": "chat.completion",
        "created": ident[1],
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": counts,
    }


def chunk(
    ident: tuple[str, int],
    model: str,
    delta: dict[str, Any] | None,
    finish: str | None = None,
    counts: dict[str, int] | None = None,
) -> dict[str, Any]:
    """An OpenAI ``chat.completion.chunk``; ``delta`` None makes the usage-only last chunk
    (no choices) that ``stream_options.include_usage`` asks for."""
    body: dict[str, Any] = {
        "id": ident[0],
        "object": "chat.completion.chunk",
        "created": ident[1],
        "model": model,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    if counts is not None:
        body["usage"] = counts
    return body
