"""Every gateway call becomes one span, stored in the background.

The request path only builds a :class:`~opsloop.llm.tracing.records.SpanRecord` and puts it on
a queue (no I/O, no JSON); a daemon thread takes batches off it and hands them to the tracing
store's durable ingest (:class:`~opsloop.llm.tracing.spool.IngestSpool`: stored in the
database, or fsynced to the spool folder while the database is away). A response never waits
for its span. Past :data:`MAX_QUEUED` spans waiting (a store far slower than the traffic) new
spans are dropped and counted, rather than letting memory grow without bound.

Attributes follow the OpenTelemetry GenAI conventions where one exists (``gen_ai.*``), with
the gateway's own under ``opsloop.gateway.*``; a guardrail decision is
``opsloop.guardrail.<stage>.<rule>`` = ``<action>:<triggered|passed>`` (its reason and score
beside it).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from opsloop.llm.gateway.ports import GuardDecision
from opsloop.llm.tracing.records import SpanRecord

__all__ = ["MAX_QUEUED", "SpanSink", "guard_attributes", "messages_text"]

MAX_QUEUED = 100_000
_BATCH = 1000
_WINDOW_S = 0.5
log = logging.getLogger(__name__)


class SpanSink:
    """Spans queued by the request path, stored by one worker thread through ``ingest``."""

    def __init__(self, ingest: Callable[[list[SpanRecord]], Any]) -> None:
        self._ingest = ingest
        self._queue: queue.SimpleQueue[tuple[SpanRecord, Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, record: SpanRecord, input_value: Any = None) -> None:
        """Queue ``record`` (never blocks); ``input_value`` (the request's messages) becomes
        its ``input`` as JSON on the worker. Starts the worker on first use."""
        if self._thread is None:
            self._start()
        if self._queue.qsize() >= MAX_QUEUED:
            self.dropped += 1
            return
        self._queue.put((record, input_value))

    def close(self, timeout_s: float = 10.0) -> None:
        """Store what is queued, then stop the worker."""
        thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout_s)
            self._thread = None

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="opsloop-gateway-spans")
                thread.daemon = True
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        """Batches of up to :data:`_BATCH` spans, gathered for up to :data:`_WINDOW_S` after
        the first: one ingest (one transaction) per batch, not per span, whatever the rate."""
        stop = False
        while not stop:
            first = self._queue.get()
            batch: list[tuple[SpanRecord, Any]] = []
            if first is None:
                stop = True
            else:
                batch.append(first)
            until = time.monotonic() + _WINDOW_S
            while len(batch) < _BATCH and not stop:
                left = until - time.monotonic()
                try:
                    item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    continue
                batch.append(item)
            if batch:
                self._store(batch)

    def _store(self, batch: list[tuple[SpanRecord, Any]]) -> None:
        records = []
        for record, input_value in batch:  # serialised here, off the request path
            if input_value is not None:
                record.input = json.dumps(input_value, ensure_ascii=False, default=repr)
            records.append(record)
        try:
            self._ingest(records)
        except Exception:  # the spool keeps what the database refused; anything else is lost
            log.exception("could not store %d gateway span(s)", len(batch))


def guard_attributes(decisions: list[GuardDecision]) -> dict[str, Any]:
    """One attribute per guardrail decision (and its reason and score where it has them)."""
    out: dict[str, Any] = {}
    for d in decisions:
        key = f"opsloop.guardrail.{d.stage}.{d.rule}"
        out[key] = f"{d.action}:{'triggered' if d.triggered else 'passed'}"
        if d.reason:
            out[key + ".reason"] = d.reason
        if d.score is not None:
            out[key + ".score"] = d.score
    return out


def messages_text(body: dict[str, Any]) -> str:
    """The characters of a chat request's messages (or an embeddings request's input), for
    estimating its tokens before the call."""
    parts: list[str] = []
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    given = body.get("input")
    if isinstance(given, str):
        parts.append(given)
    elif isinstance(given, list):
        parts.extend(str(x) for x in given)
    return "".join(parts)
