"""A registered causal LM answering OpenAI chat requests in-process: the gateway's
:class:`~opsloop.llm.gateway.ports.LocalGenerator` for ``kind: local`` targets.

Requests are read and their prompts rendered on the event loop (a bad body is a 400 before it
queues); the tokens come from one worker thread that batches every request in flight
(:mod:`.generation_engine`). The worker hands each event to the request's own
``asyncio.Queue`` through ``loop.call_soon_threadsafe``, so the loop never blocks on the model
and a caller that goes away (a closed stream, a cancelled task) frees its batch row at the next
step.

Example:
    >>> generator = TransformersGenerator(model, tokenizer, name="support-bot@3")
    >>> answer = await generator.complete({"messages": [{"role": "user", "content": "hi"}]})
    >>> async for chunk in generator.stream({"messages": [...], "max_tokens": 20}): ...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from typing import Any

from opsloop.llm.gateway.generation_body import ChatRequest
from opsloop.llm.gateway.generation_body import chunk
from opsloop.llm.gateway.generation_body import completion
from opsloop.llm.gateway.generation_body import new_id
from opsloop.llm.gateway.generation_body import parse_chat
from opsloop.llm.gateway.generation_body import render_prompt
from opsloop.llm.gateway.generation_body import usage

if TYPE_CHECKING:
    from opsloop.llm.gateway.generation_engine import BatchEngine
    from opsloop.llm.gateway.generation_engine import Event
    from opsloop.llm.gateway.generation_engine import Sequence

__all__ = ["TransformersGenerator"]


class TransformersGenerator:
    """Chat completions from a transformers causal LM and its tokenizer, batched.

    Args:
        model: A decoder-only ``PreTrainedModel`` that can generate.
        tokenizer: Its tokenizer; its chat template renders the messages when it has one.
        name: The model name put in responses (the version's ref).
        device: ``cuda`` or ``cpu``; by default the GPU when torch sees one.
        max_batch: The most requests generated together; the rest wait their turn.

    Raises:
        InvalidInput: The model is not a causal LM the engine can batch.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        device: str | None = None,
        max_batch: int = 32,
    ) -> None:
        from opsloop.llm.gateway.generation_engine import BatchEngine  # imports torch

        self.name = name
        self.tokenizer = tokenizer
        self.engine: BatchEngine = BatchEngine(model, tokenizer, device=device, max_batch=max_batch)
        self.engine.start()

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """An OpenAI ``chat.completion`` for ``body``.

        Raises:
            InvalidInput: A body a local model cannot answer (see :func:`parse_chat`), or a
                prompt longer than the model's context.
            UpstreamFailed: The model failed while generating.
        """
        sequence, queue = self._submit(parse_chat(body))
        ident, parts = new_id(), []
        async for event in _events(sequence, queue):  # ends with the last event, or raises
            parts.append(event.text)
        counts = usage(event.prompt_tokens, event.completion_tokens)
        return completion(ident, self.name, "".join(parts), str(event.finish_reason), counts)

    def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """OpenAI ``chat.completion.chunk`` objects for ``body``: the assistant role first,
        then one chunk per token that adds text, then the finish reason (and a usage chunk
        when ``stream_options.include_usage`` asks for it).

        The body is checked here, before the iterator is returned: a bad one raises
        :class:`~opsloop.errors.InvalidInput` at once, never after a chunk was sent. A model
        failure mid-answer raises :class:`~opsloop.errors.UpstreamFailed` from the iterator.
        """
        request = parse_chat(body)
        sequence, queue = self._submit(request)
        return self._chunks(request, sequence, queue)

    async def _chunks(
        self, request: ChatRequest, sequence: Sequence, queue: asyncio.Queue[Event]
    ) -> AsyncIterator[dict[str, Any]]:
        ident = new_id()
        yield chunk(ident, self.name, {"role": "assistant", "content": ""})
        async for event in _events(sequence, queue):
            if event.text:
                yield chunk(ident, self.name, {"content": event.text})
            if event.last:
                yield chunk(ident, self.name, {}, event.finish_reason)
                if request.include_usage:
                    counts = usage(event.prompt_tokens, event.completion_tokens)
                    yield chunk(ident, self.name, None, counts=counts)

    def _submit(self, request: ChatRequest) -> tuple[Sequence, asyncio.Queue[Event]]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue()
        prompt = render_prompt(self.tokenizer, request.messages)

        def emit(event: Event) -> None:  # on the worker thread
            loop.call_soon_threadsafe(queue.put_nowait, event)

        sequence = self.engine.sequence(prompt, request.sampling, emit)
        self.engine.submit(sequence)
        return sequence, queue

    def close(self) -> None:
        """Finish the requests in flight, take no more, and stop the worker thread."""
        self.engine.close()


async def _events(sequence: Sequence, queue: asyncio.Queue[Event]) -> AsyncIterator[Event]:
    """The request's events up to its last; raises the error that ended it. Leaving early
    (the caller cancelled or stopped reading) cancels the request in the engine."""
    try:
        while True:
            event = await queue.get()
            if event.error is not None:
                raise event.error
            yield event
            if event.last:
                return
    finally:
        sequence.cancel()
