"""Every gateway call becomes one span, stored by a writer outside the request's process.

The request path builds a :class:`~opsloop.llm.tracing.records.SpanRecord` and appends it, as
one JSON line, to this gateway's span journal (:mod:`opsloop.llm.tracing.journal`: one
``write``, no queue in memory); a writer process reads the journal back and stores it in
batches of thousands of spans per transaction (:mod:`opsloop.llm.tracing.journal_writer`), so
the database work never competes with requests for the GIL and the gateway's memory stays flat
whatever the traffic. A span is on disk once the response is sent: a gateway killed at any
moment loses none of them, since the next writer stores any journal whose owner is gone. What
waits on disk is bounded; past the bound new spans are dropped, counted
(``opsloop_gateway_spans_dropped_total`` in ``/metrics``) and logged, never queued.

Attributes follow the OpenTelemetry GenAI conventions where one exists (``gen_ai.*``), with
the gateway's own under ``opsloop.gateway.*``; a guardrail decision is
``opsloop.guardrail.<stage>.<rule>`` = ``<action>:<triggered|passed>`` (its reason and score
beside it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from opsloop.kernel.metrics import REGISTRY
from opsloop.llm.gateway.ports import GuardDecision
from opsloop.llm.tracing.journal import SpanJournal
from opsloop.llm.tracing.journal_writer import JournalWriter
from opsloop.llm.tracing.records import SpanRecord

__all__ = ["SpanSink", "guard_attributes", "messages_text"]

_CHECK_WRITER_S = 5.0
log = logging.getLogger(__name__)
DROPPED = Counter(
    "opsloop_gateway_spans_dropped",
    "Gateway spans not recorded because the span journal's backlog on disk was full",
    registry=REGISTRY,
)


class SpanSink:
    """Spans journaled by the request path, stored by a writer process (a thread when only
    this process can open the database: ``ingest`` instead of ``database_url``). The journal
    and its writer start on the first span, and again on the first after :meth:`close`."""

    def __init__(
        self,
        folder: Path,
        *,
        database_url: str | None = None,
        ingest: Callable[[list[SpanRecord]], Any] | None = None,
        **journal_options: int,
    ) -> None:
        self.folder, self._database_url, self._ingest = folder, database_url, ingest
        self._journal_options = journal_options  # SpanJournal's bounds
        self._lock = threading.Lock()
        self.journal: SpanJournal | None = None
        self._writer: JournalWriter | None = None
        self._check_at = 0.0
        self.dropped = 0

    def start(self) -> None:
        """Open the journal and start its writer now, not on the first span (a server
        starting, so the writer's start-up does not land on its first requests)."""
        if self.journal is None:
            self._open()

    def put(self, record: SpanRecord, input_value: Any = None) -> None:
        """Journal ``record`` (never waits for the database); ``input_value`` (the request's
        messages) becomes its ``input`` as JSON when stored."""
        journal = self.journal or self._open()
        if not journal.append(record, input_value):
            self.dropped += 1
            DROPPED.inc()
            if self.dropped in (1, 1000) or self.dropped % 100_000 == 0:
                log.warning("span journal full: %d gateway span(s) dropped", self.dropped)
        if time.monotonic() >= self._check_at:
            self._check_writer()

    def close(self, timeout_s: float = 30.0) -> None:
        """Close the journal and wait for the writer to store it; what it could not store in
        ``timeout_s`` stays on disk for the next writer."""
        with self._lock:
            journal, writer, self.journal, self._writer = self.journal, self._writer, None, None
        if journal is None or writer is None:
            return
        journal.close()
        if not writer.stop(timeout_s):
            log.warning("the span writer did not finish in %.0f s: the rest waits in %s",
                        timeout_s, journal.folder)  # fmt: skip

    def _open(self) -> SpanJournal:
        with self._lock:
            if self.journal is None:
                journal = SpanJournal(self.folder, **self._journal_options)
                self._writer = JournalWriter(self.folder, journal.folder.name,
                                             database_url=self._database_url,
                                             ingest=self._ingest)  # fmt: skip
                self._check_at = time.monotonic() + _CHECK_WRITER_S
                self.journal = journal
            return self.journal

    def _check_writer(self) -> None:
        with self._lock:
            self._check_at = time.monotonic() + _CHECK_WRITER_S
            if self._writer is not None and not self._writer.alive():
                log.warning("the span writer stopped; starting another")
                self._writer.start()


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
