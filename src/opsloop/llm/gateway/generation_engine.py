"""Continuous batching for a transformers causal LM: one worker thread owns the model and
generates for every request in flight at once, one token per request per step.

The batch is a left-padded KV cache (``DynamicCache``, one row per request) and its attention
mask. Each step first admits the requests that arrived since the last one: their prompts are
run together (left-padded among themselves), their first tokens sampled, and their cache rows
padded on the left to the batch's length and appended to it. Then one decode step feeds every
row its last token. A request that ends (end-of-sequence token, stop sequence, ``max_tokens``,
or its caller gone) leaves the batch at once, and columns that only padding uses are cut off,
so the cache is never longer than the longest request in it. Positions come from the mask
(real tokens so far), so a row's logits do not depend on its neighbours beyond float rounding.

torch releases the GIL inside its kernels, so the event loop serving requests keeps running
while the worker computes. This module imports torch; it is imported only when a local model is
loaded.
"""

from __future__ import annotations

import collections
import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import torch
from transformers import DynamicCache
from transformers import PreTrainedModel
from transformers.cache_utils import DynamicLayer

from opsloop.errors import InvalidInput
from opsloop.errors import UpstreamFailed
from opsloop.llm.gateway.generation_body import Sampling
from opsloop.llm.gateway.generation_body import TextStream

__all__ = ["BatchEngine", "Event", "Sequence"]

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 256  # for a model whose config names no context window


@dataclass(frozen=True)
class Event:
    """What the worker tells a request: new text, and at the end its ``finish_reason``
    (``stop`` or ``length``) with the token counts, or the ``error`` that ended it."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: Exception | None = None

    @property
    def last(self) -> bool:
        return self.finish_reason is not None or self.error is not None


@dataclass(eq=False)
class Sequence:
    """One request in the engine. ``emit`` is called on the worker thread and must not block;
    ``cancel`` may be called from any thread (the row leaves at the next step)."""

    prompt: list[int]
    max_new: int
    sampling: Sampling
    text: TextStream
    emit: Callable[[Event], None]
    generated: int = 0
    next_token: int = 0
    done: bool = False
    cancelled: bool = False
    rng: torch.Generator | None = field(default=None, repr=False)

    def cancel(self) -> None:
        self.cancelled = True


class BatchEngine:
    """Generates for many :class:`Sequence` at once on one model.

    Drive it with :meth:`start` (the worker thread calls :meth:`step` while there is work), or
    call :meth:`step` yourself from one thread. :meth:`submit` and :meth:`close` are
    thread-safe; everything else belongs to the thread that steps.

    Raises:
        InvalidInput: The model is not a decoder-only causal LM, or its cache is not the plain
            growing kind (sliding-window and recurrent layers cannot be left-padded and merged).
    """

    def __init__(
        self, model: Any, tokenizer: Any, *, device: str | None = None, max_batch: int = 32
    ) -> None:
        if not isinstance(model, PreTrainedModel) or not model.can_generate():
            raise InvalidInput(f"{type(model).__name__} is not a transformers causal LM")
        if model.config.is_encoder_decoder:
            raise InvalidInput(f"{type(model).__name__} is an encoder-decoder, not a causal LM")
        layers = DynamicCache(config=model.config).layers
        if any(type(layer) is not DynamicLayer for layer in layers):
            raise InvalidInput(f"{type(model).__name__}'s cache cannot be batched continuously")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        config = model.config.get_text_config(decoder=True)
        window = getattr(config, "max_position_embeddings", None) or getattr(
            config, "n_positions", None
        )
        self.window: int | None = int(window) if window else None
        self.eos = _eos_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad = int(pad if pad is not None else min(self.eos, default=0))  # masked out anyway
        parameters = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in parameters else "past_key_values"
        self._last_only = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}
        self._waiting: collections.deque[Sequence] = collections.deque()
        self._wake = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self.rows: list[Sequence] = []
        self._cache: Any = None
        self._mask: torch.Tensor | None = None
        self.peak_batch = 0  # the most requests generated together so far
        self.joined_running = 0  # requests admitted while others were mid-answer

    # -- requests -------------------------------------------------------------------------------
    def sequence(
        self, prompt: list[int], sampling: Sampling, emit: Callable[[Event], None]
    ) -> Sequence:
        """A request for ``prompt``, with ``max_tokens`` capped by the context window.

        Raises:
            InvalidInput: The prompt leaves no room in the model's context window.
        """
        room = self.window - len(prompt) if self.window else None
        if room is not None and room < 1:
            raise InvalidInput(
                f"the prompt has {len(prompt)} tokens; the model's context holds {self.window}"
            )
        budget = sampling.max_tokens or room or DEFAULT_MAX_TOKENS
        if room is not None:
            budget = min(budget, room)
        rng = None
        if sampling.temperature > 0:
            rng = torch.Generator(device=self.device)
            if sampling.seed is not None:
                rng.manual_seed(sampling.seed)
            else:
                rng.seed()
        text = TextStream(self.tokenizer, sampling.stop)
        return Sequence(list(prompt), budget, sampling, text, emit, rng=rng)

    def submit(self, sequence: Sequence) -> None:
        """Queue a request; it joins the batch at the next step.

        Raises:
            UpstreamFailed: The engine is closing (the gateway is shutting down).
        """
        with self._wake:
            if self._closing:
                raise UpstreamFailed("this local model is shutting down; send the request again")
            self._waiting.append(sequence)
            self._wake.notify()

    def start(self) -> None:
        """Start the worker thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="opsloop-generate", daemon=True)
            self._thread.start()

    def close(self, timeout: float | None = None) -> None:
        """Take no new requests, let the worker finish those it has, and wait for it."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self.rows and not self._waiting:
                    if self._closing:
                        return
                    self._wake.wait()
            self.step()

    # -- one step -------------------------------------------------------------------------------
    def step(self) -> bool:
        """Admit the waiting requests, generate one token for every row, retire the finished;
        returns whether any work is left. A failure of the model fails every request in the
        batch (an :class:`UpstreamFailed` event) and empties it."""
        with self._wake:
            room = max(self.max_batch - len(self.rows), 0)
            new = [self._waiting.popleft() for _ in range(min(room, len(self._waiting)))]
        try:
            with torch.inference_mode():
                self._retire()
                if new:
                    self._admit([s for s in new if not s.cancelled])
                if self.rows:
                    self._decode()
                    self._retire()
        except Exception as exc:  # the model failed: every request in it fails, the engine goes on
            log.exception("local generation failed")
            failure = UpstreamFailed(f"the local model failed: {type(exc).__name__}: {exc}")
            for sequence in {*self.rows, *new}:
                if not sequence.done:
                    sequence.done = True
                    _send(sequence, Event(error=failure))
            self.rows, self._cache, self._mask = [], None, None
        with self._wake:
            return bool(self.rows or self._waiting)

    def _admit(self, new: list[Sequence]) -> None:
        """Run the new prompts together, sample their first tokens, and append the rows that go
        on to the batch."""
        if not new:
            return
        width = max(len(s.prompt) for s in new)
        ids = torch.full((len(new), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(new), width), dtype=torch.long)
        for row, sequence in enumerate(new):
            ids[row, width - len(sequence.prompt) :] = torch.tensor(sequence.prompt)
            mask[row, width - len(sequence.prompt) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **self._last_only,
        )
        cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
        for sequence, token in zip(new, self._sample(out.logits[:, -1, :], new), strict=True):
            self._advance(sequence, token)
        going = [row for row, s in enumerate(new) if not s.done]
        if not going:
            return
        if self.rows:
            self.joined_running += len(going)
        keep = torch.tensor(going, device=self.device)
        layers = [(layer.keys[keep], layer.values[keep]) for layer in cache.layers]
        self._merge(layers, mask[keep], [new[row] for row in going])

    def _merge(self, layers: list[Any], mask: torch.Tensor, rows: list[Sequence]) -> None:
        if self._mask is None:
            self._cache, self._mask, self.rows = DynamicCache(ddp_cache_data=layers), mask, rows
        else:
            width = max(self._mask.shape[1], mask.shape[1])
            old = [(layer.keys, layer.values) for layer in self._cache.layers]
            merged = [
                tuple(torch.cat([_left_pad(a, width), _left_pad(b, width)]) for a, b in pairs)
                for pairs in (zip(o, n, strict=True) for o, n in zip(old, layers, strict=True))
            ]
            self._cache = DynamicCache(ddp_cache_data=merged)
            self._mask = torch.cat([_left_pad(self._mask, width), _left_pad(mask, width)])
            self.rows = [*self.rows, *rows]
        self.peak_batch = max(self.peak_batch, len(self.rows))

    def _decode(self) -> None:
        assert self._mask is not None
        ids = torch.tensor([[s.next_token] for s in self.rows], device=self.device)
        ones = torch.ones((len(self.rows), 1), dtype=self._mask.dtype, device=self.device)
        self._mask = torch.cat([self._mask, ones], dim=1)
        positions = self._mask.sum(-1, keepdim=True) - 1
        out = self.model(
            input_ids=ids,
            attention_mask=self._mask,
            position_ids=positions,
            use_cache=True,
            **{self._cache_arg: self._cache},
            **self._last_only,
        )
        rows = self.rows
        for sequence, token in zip(rows, self._sample(out.logits[:, -1, :], rows), strict=True):
            self._advance(sequence, token)

    def _retire(self) -> None:
        """Drop finished and cancelled rows, and the columns only padding used."""
        keep = [row for row, s in enumerate(self.rows) if not (s.done or s.cancelled)]
        if len(keep) == len(self.rows) or self._mask is None:
            return
        if not keep:
            self.rows, self._cache, self._mask = [], None, None
            return
        index = torch.tensor(keep, device=self.device)
        mask = self._mask[index]
        first = int(mask.any(dim=0).nonzero()[0])
        layers = [
            (layer.keys[index, :, first:], layer.values[index, :, first:])
            for layer in self._cache.layers
        ]
        self._cache, self._mask = DynamicCache(ddp_cache_data=layers), mask[:, first:]
        self.rows = [self.rows[row] for row in keep]

    # -- tokens ---------------------------------------------------------------------------------
    def _sample(self, logits: torch.Tensor, rows: list[Sequence]) -> list[int]:
        """Greedy rows take the argmax; the others draw from their temperature- and
        nucleus-shaped distribution with their own generator."""
        greedy = logits.argmax(dim=-1).tolist()
        for row, sequence in enumerate(rows):
            if sequence.rng is None:
                continue
            probs = torch.softmax(logits[row].float() / sequence.sampling.temperature, dim=-1)
            if sequence.sampling.top_p < 1.0:
                ordered, order = probs.sort(descending=True)
                drop = ordered.cumsum(-1) - ordered >= sequence.sampling.top_p
                drop[0] = False  # the most likely token always stays
                probs = probs.scatter(0, order, ordered.masked_fill(drop, 0.0))
            greedy[row] = int(torch.multinomial(probs, 1, generator=sequence.rng))
        return greedy

    def _advance(self, sequence: Sequence, token: int) -> None:
        """Record one generated token: send its text, and end the request on an
        end-of-sequence token, a stop sequence or its token budget."""
        sequence.generated += 1
        sequence.next_token = token
        finish = None
        if token in self.eos:
            text, finish = sequence.text.flush(), "stop"
        else:
            text, stopped = sequence.text.push(token)
            if stopped:
                finish = "stop"
            elif sequence.generated >= sequence.max_new:
                text, finish = text + sequence.text.flush(), "length"
        if finish is None:
            if text:
                _send(sequence, Event(text=text))
            return
        sequence.done = True
        counts = {"prompt_tokens": len(sequence.prompt), "completion_tokens": sequence.generated}
        _send(sequence, Event(text=text, finish_reason=finish, **counts))


def _send(sequence: Sequence, event: Event) -> None:
    """Hand an event to the request; one whose caller is gone is cancelled."""
    try:
        sequence.emit(event)
    except RuntimeError:  # the caller's event loop is closed
        sequence.cancelled = True


def _left_pad(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """``tensor`` (a mask ``[batch, seq]`` or cache ``[batch, heads, seq, dim]``) with zero
    columns added on the left of its sequence axis up to ``width``."""
    axis = 1 if tensor.dim() == 2 else 2
    missing = width - tensor.shape[axis]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[axis] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=axis)


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """The tokens that end an answer: the generation config's and the tokenizer's."""
    found = getattr(model.generation_config, "eos_token_id", None)
    ids = set(found) if isinstance(found, list) else ({found} if found is not None else set())
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    vocab = model.config.get_text_config(decoder=True).vocab_size
    return {int(i) for i in ids if 0 <= int(i) < vocab}
