"""Tracing in the SDK: ``@observe``, ``span(...)`` blocks, and reading traces back.

A span is opened with :meth:`Tracer.span` (a context manager) or by calling a function
decorated with :func:`observe`; it becomes the current span for its thread or asyncio task, so
spans opened inside it become its children. On exit the span is finished into a
:class:`SpanRecord` and handed to the :class:`SpanExporter`, which stores it in the background
(the local store, or a server's ``/v1/traces``). Errors raised inside a span mark it failed
with the exception's type and message, and propagate unchanged.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import KW_ONLY
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import TypeVar

import pyarrow.parquet as pq
from pydantic import ValidationError

from opsloop.errors import InvalidInput
from opsloop.errors import validation_problems
from opsloop.kernel import ambient
from opsloop.kernel.bounds import is_ascii_int
from opsloop.kernel.paging import Page
from opsloop.llm.tracing.backend import TracingBackend
from opsloop.llm.tracing.context import CURRENT_SPAN
from opsloop.llm.tracing.entities import ModelPriceIn
from opsloop.llm.tracing.entities import ModelPriceOut
from opsloop.llm.tracing.entities import Score
from opsloop.llm.tracing.entities import ScoreCreate
from opsloop.llm.tracing.entities import Trace
from opsloop.llm.tracing.entities import TraceDetail
from opsloop.llm.tracing.entities import TraceFilter
from opsloop.llm.tracing.exporter import SpanExporter
from opsloop.llm.tracing.records import KINDS
from opsloop.llm.tracing.records import SpanRecord
from opsloop.llm.tracing.records import to_text
from opsloop.llm.tracing.usage import TraceUsage

__all__ = ["ActiveSpan", "Tracer", "TracesClient", "observe"]

F = TypeVar("F", bound=Callable[..., Any])
_UNSET: Any = object()
_USAGE_KEYS = {
    "input_tokens": "input_tokens", "prompt_tokens": "input_tokens",
    "output_tokens": "output_tokens", "completion_tokens": "output_tokens",
    "total_tokens": "total_tokens",
}  # fmt: skip


# Ids come from a generator of our own, seeded from the OS: code that seeds ``random`` for
# reproducible training (``opsloop.seed_everything``) must not make trace ids repeat, which
# would make a second run's spans collide with the first's. Re-seeded in forked children.
_IDS = random.Random()
os.register_at_fork(after_in_child=_IDS.seed)


def _new_id(bits: int) -> str:
    value = _IDS.getrandbits(bits) or 1
    return f"{value:0{bits // 4}x}"


class ActiveSpan:
    """An open span. ``update`` fills it in; it ends when its block or function returns."""

    __slots__ = ("_ended", "_token", "_tracer", "record")

    def __init__(self, tracer: Tracer, record: SpanRecord) -> None:
        self._tracer = tracer
        self.record = record
        self._token: Any = None
        self._ended = False

    @property
    def trace_id(self) -> str:
        return self.record.trace_id

    @property
    def span_id(self) -> str:
        return self.record.span_id

    def update(
        self,
        *,
        input: Any = _UNSET,
        output: Any = _UNSET,
        model: str | None = None,
        usage: dict[str, int] | Any | None = None,
        cost: float | None = None,
        metadata: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        prompt: Any = None,
        name: str | None = None,
    ) -> ActiveSpan:
        """Set what is known about this span; every argument is optional.

        ``usage`` takes ``{"input_tokens", "output_tokens"}`` or OpenAI's
        ``{"prompt_tokens", "completion_tokens"}`` (a dict or the ``usage`` object of a
        response). ``prompt`` is a ``Prompt`` from the prompt registry (or ``"name@N"``).
        """
        r = self.record
        if input is not _UNSET:
            r.input = to_text(input)
        if output is not _UNSET:
            r.output = to_text(output)
        if model is not None:
            r.model = model
        if usage is not None:
            self._usage(usage)
        if cost is not None:
            r.cost = float(cost)
        if metadata:
            r.attributes.update({str(k): _attribute(v) for k, v in metadata.items()})
        if tags:
            r.tags.extend(str(t) for t in tags if str(t) not in r.tags)
        if user_id is not None:
            r.user_id = str(user_id)
        if session_id is not None:
            r.session_id = str(session_id)
        if prompt is not None:
            self.use_prompt(prompt)
        if name:
            r.name = name
        return self

    def use_prompt(self, prompt: Any) -> None:
        """Record the prompt version this span used (``Prompt`` or ``"name@N"``)."""
        if isinstance(prompt, str):
            name, _, number = prompt.partition("@")
            if not is_ascii_int(number):
                raise InvalidInput(f"prompt {prompt!r}: give a numbered version, NAME@N")
            self.record.prompt_name, self.record.prompt_version = name, int(number)
        else:
            self.record.prompt_name, self.record.prompt_version = prompt.name, prompt.version

    def _usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            usage = {k: getattr(usage, k, None) for k in _USAGE_KEYS}
        for key, field in _USAGE_KEYS.items():
            value = usage.get(key)
            if value is not None:
                setattr(self.record, field, int(value))
        r = self.record
        if r.total_tokens is None and (r.input_tokens is not None or r.output_tokens is not None):
            r.total_tokens = (r.input_tokens or 0) + (r.output_tokens or 0)

    def record_error(self, error: BaseException) -> None:
        self.record.status = "error"
        self.record.status_message = f"{type(error).__name__}: {error}"
        self.record.events.append(
            {
                "name": "exception",
                "time_ns": time.time_ns(),
                "attributes": {
                    "exception.type": type(error).__name__,
                    "exception.message": str(error),
                },
            }
        )

    def end(self) -> None:
        """Finish the span now (blocks and decorated functions do this for you)."""
        if self._ended:
            return
        self._ended = True
        self.record.end_ns = time.time_ns()
        if self.record.status == "unset":
            self.record.status = "ok"
        self._tracer.exporter.add(self.record)

    def __enter__(self) -> ActiveSpan:
        self._token = CURRENT_SPAN.set(self)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, _tb: Any) -> None:
        if exc is not None:
            self.record_error(exc)
        if self._token is not None:
            CURRENT_SPAN.reset(self._token)
        self.end()

    def __repr__(self) -> str:
        return f"<ActiveSpan {self.record.name!r} {self.trace_id}/{self.span_id}>"


def _attribute(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        return list(value)
    return to_text(value)


@dataclass(eq=False)
class Tracer:
    """Opens spans and hands finished ones to its exporter.

    Args:
        exporter: Where finished spans go.
        service: Recorded on every span (OpenTelemetry's ``service.name``).
        enabled: False makes spans no-ops (``OPSLOOP_TRACING=off``), for tests and hot paths.
    """

    exporter: SpanExporter
    _: KW_ONLY
    service: str | None = None
    enabled: bool = True

    def span(
        self,
        name: str,
        *,
        kind: str = "span",
        input: Any = _UNSET,
        parent: ActiveSpan | None = None,
        **fields: Any,
    ) -> ActiveSpan:
        """A span for a ``with`` block: ``with tracer.span("retrieve", kind="retriever") as s:``.

        ``kind`` is one of chain, llm, retriever, tool, agent, embedding, reranker, guardrail,
        evaluator or span. Keyword ``fields`` are passed to :meth:`ActiveSpan.update`.
        """
        if kind not in KINDS:
            raise InvalidInput(f"span kind {kind!r} is not one of: {', '.join(KINDS)}")
        parent = parent if parent is not None else CURRENT_SPAN.get()
        if parent is not None:
            p = parent.record
            record = SpanRecord(
                trace_id=p.trace_id, span_id=_new_id(64), name=name, start_ns=time.time_ns(),
                end_ns=0, parent_span_id=p.span_id, kind=kind, service=self.service,
                user_id=p.user_id, session_id=p.session_id,
            )  # fmt: skip
        else:
            record = SpanRecord(
                trace_id=_new_id(128), span_id=_new_id(64), name=name, start_ns=time.time_ns(),
                end_ns=0, kind=kind, service=self.service,
            )  # fmt: skip
        span = ActiveSpan(self, record) if self.enabled else _NoopSpan(self, record)
        if input is not _UNSET or fields:
            span.update(input=input, **fields)
        return span

    def observe(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        kind: str = "chain",
        capture_input: bool = True,
        capture_output: bool = True,
    ) -> Any:
        """Decorate a function (sync, async, or a generator) so each call is a span."""
        return observe(
            fn, name=name, kind=kind, capture_input=capture_input,
            capture_output=capture_output, tracer=self,
        )  # fmt: skip

    def flush(self) -> None:
        self.exporter.flush()


class _NoopSpan(ActiveSpan):
    __slots__ = ()

    def end(self) -> None:
        self._ended = True


def _default_tracer() -> Tracer:
    return ambient.default_client().traces.tracer


def _inputs(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return {"args": args, "kwargs": kwargs}
    return {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}


def observe(
    fn: F | None = None,
    *,
    name: str | None = None,
    kind: str = "chain",
    capture_input: bool = True,
    capture_output: bool = True,
    tracer: Tracer | None = None,
) -> Any:
    """Trace every call of the decorated function as a span (a new trace at the top level).

    Works on plain functions, ``async def`` coroutines and (async) generators, whose span
    lasts until they are exhausted. Arguments become the span's input and the return value its
    output (JSON where possible); turn either off for secrets or bulky objects. Inside the
    function, ``opsloop.tracing.current_span().update(...)`` adds the model, usage and the rest.

    Example:
        >>> @opsloop.observe(kind="llm")
        ... def answer(question: str) -> str: ...
    """
    if fn is None:
        return functools.partial(
            observe, name=name, kind=kind, capture_input=capture_input,
            capture_output=capture_output, tracer=tracer,
        )  # fmt: skip
    if kind not in KINDS:
        raise InvalidInput(f"span kind {kind!r} is not one of: {', '.join(KINDS)}")
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "call")
    span_name = name or qualname.rsplit("<locals>.", 1)[-1]  # Class.method, not f.<locals>.g
    signature = inspect.signature(fn)

    def open_span(args: tuple[Any, ...], kwargs: dict[str, Any]) -> ActiveSpan:
        active = tracer or _default_tracer()
        if capture_input:
            return active.span(span_name, kind=kind, input=_inputs(signature, args, kwargs))
        return active.span(span_name, kind=kind)

    def done(span: ActiveSpan, result: Any) -> Any:
        if capture_output:
            span.update(output=result)
        return result

    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def agen_wrapper(*args: Any, **kwargs: Any) -> Any:
            with open_span(args, kwargs) as span:
                items = []
                async for item in fn(*args, **kwargs):
                    items.append(item)
                    yield item
                done(span, _joined(items))

        return agen_wrapper
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with open_span(args, kwargs) as span:
                return done(span, await fn(*args, **kwargs))

        return async_wrapper
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            with open_span(args, kwargs) as span:
                items = []
                for item in fn(*args, **kwargs):
                    items.append(item)
                    yield item
                done(span, _joined(items))

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with open_span(args, kwargs) as span:
            return done(span, fn(*args, **kwargs))

    return wrapper


def _joined(items: list[Any]) -> Any:
    """Streamed output as one value: text chunks joined, anything else as the list."""
    if items and all(isinstance(i, str) for i in items):
        return "".join(items)
    return items


def _filter(filters: dict[str, Any]) -> TraceFilter:
    try:
        return TraceFilter(**filters)
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc))
        raise InvalidInput(f"invalid trace filter: {problems}") from None


class TracesClient(TraceUsage):
    """Traces, scores, usage stats, sessions and model prices; ``tracer`` records new spans.

    Example:
        >>> traces = Client().traces
        >>> with traces.tracer.span("answer", kind="chain", input=q) as span:
        ...     span.update(output=a)
        >>> traces.flush()
        >>> traces.list(user_id="u1", error=False)
    """

    def __init__(self, backend: TracingBackend) -> None:
        self._backend = backend
        self.tracer = Tracer(
            SpanExporter(backend.ingest),
            service=os.environ.get("OTEL_SERVICE_NAME"),
            enabled=os.environ.get("OPSLOOP_TRACING", "on").lower() not in ("off", "0", "false"),
        )

    def flush(self) -> None:
        """Store every span ended so far (they are sent in the background otherwise)."""
        self.tracer.flush()

    def list(
        self, *, max_results: int = 100, page_token: str | None = None, **filters: Any
    ) -> Page[Trace]:
        """Traces newest first; ``filters`` are :class:`TraceFilter` fields (``user_id``,
        ``tags``, ``error``, ``min_cost``, ``scores=["helpfulness>=0.5"]``, ...)."""
        return self._backend.list_traces(_filter(filters), max_results, page_token)

    def get(self, trace_id: str) -> TraceDetail:
        """One trace with its spans and scores."""
        return self._backend.get_trace(trace_id)

    def export(self, path: str | Path, *, what: str = "spans", **filters: Any) -> Path:
        """Write matching spans (or ``what="traces"``) to a Parquet file."""
        table = self._backend.export(_filter(filters), what)
        path = Path(path)
        pq.write_table(table, path)
        return path

    def score(
        self,
        trace_id: str,
        name: str,
        value: float | bool | str,
        *,
        span_id: str | None = None,
        comment: str | None = None,
        data_type: str | None = None,
        source: str = "api",
    ) -> Score:
        """Score a trace (or one span): numeric, boolean, categorical or text.

        Spans still queued are sent first, so a trace just traced can be scored at once.
        """
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"score {name!r}: {value!r} is not a finite numeric score")
        self.flush()
        body = ScoreCreate(
            trace_id=trace_id, name=name, value=value, span_id=span_id, comment=comment,
            data_type=data_type, source=source,  # type: ignore[arg-type]
        )  # fmt: skip
        return self._backend.add_score(body)

    def scores(self, *, trace_id: str | None = None, name: str | None = None) -> list[Score]:
        return self._backend.list_scores(trace_id, name)

    def delete_score(self, score_id: str) -> None:
        self._backend.delete_score(score_id)

    def prices(self) -> list[ModelPriceOut]:
        """Model prices in the order they are tried: yours, then the defaults."""
        return self._backend.list_prices()

    def set_price(
        self,
        pattern: str,
        *,
        input_per_mtok: float = 0.0,
        output_per_mtok: float = 0.0,
        per_request: float = 0.0,
    ) -> ModelPriceOut:
        """Price the models matching ``pattern`` (regex), for spans ingested from now on."""
        return self._backend.set_price(
            ModelPriceIn(
                pattern=pattern,
                input_per_mtok=input_per_mtok,
                output_per_mtok=output_per_mtok,
                per_request=per_request,
            )
        )

    def delete_price(self, pattern: str) -> None:
        self._backend.delete_price(pattern)

    def close(self) -> None:
        self.tracer.exporter.close()
