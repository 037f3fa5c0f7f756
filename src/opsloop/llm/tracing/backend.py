"""The tracing backend contract: what the SDK needs from a trace store, local or remote.

Two implementations: :class:`~opsloop.llm.tracing.local.LocalTracingBackend` calls the services
in-process, :class:`~opsloop.llm.tracing.remote.RemoteTracingBackend` calls the server, which
calls the same services. Spans go to a server as OTLP protobuf on ``/v1/traces``, the very
endpoint OpenTelemetry exporters use, so the SDK and third-party instrumentation share one
ingest path. Conveniences (the tracer, the background exporter, filters given as keywords) are
written once, in :class:`~opsloop.llm.tracing.sdk.TracesClient`.

Contract: methods are thread-safe; returned entities are immutable snapshots (frozen pydantic
models; ``export`` returns a new Arrow table); errors are ``OpsloopError`` subclasses, the same
class whichever backend raised them; every write is durable when the method returns (a server
whose database is away acknowledges an ingested batch once it is fsynced to its spool, and
stores it from there, so the spans may become readable a little later). Each method's docstring
names the errors it raises on purpose; any method may also raise ``StoreError`` (the database
or server failed; retrying may help) and, over HTTP, ``Unauthenticated`` or
``PermissionDenied``.
"""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod
from typing import TYPE_CHECKING

from opsloop.kernel.paging import Page
from opsloop.llm.tracing.entities import IngestResult
from opsloop.llm.tracing.entities import ModelPriceIn
from opsloop.llm.tracing.entities import ModelPriceOut
from opsloop.llm.tracing.entities import Score
from opsloop.llm.tracing.entities import ScoreCreate
from opsloop.llm.tracing.entities import Trace
from opsloop.llm.tracing.entities import TraceDetail
from opsloop.llm.tracing.entities import TraceFilter
from opsloop.llm.tracing.records import SpanRecord
from opsloop.llm.tracing.stats import SessionDetail
from opsloop.llm.tracing.stats import SessionQuery
from opsloop.llm.tracing.stats import SessionSummary
from opsloop.llm.tracing.stats import StatsQuery
from opsloop.llm.tracing.stats import TraceStats

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["TracingBackend"]


class TracingBackend(ABC):
    """Spans, the traces they form, scores and model prices. See the module docstring for the
    contract."""

    @abstractmethod
    def ingest(self, records: list[SpanRecord]) -> IngestResult:
        """Store a batch of finished spans, costed with the current prices. Idempotent: a span
        already stored (same trace and span id) is skipped. Spans that cannot be stored (bad
        ids, no name, ending before they start) are not raised but counted in the result's
        ``rejected``, with up to ten reasons in ``errors``; the rest of the batch is kept."""

    @abstractmethod
    def list_traces(
        self, flt: TraceFilter, max_results: int, page_token: str | None
    ) -> Page[Trace]:
        """One page of the traces ``flt`` selects, newest first. ``InvalidInput`` for a
        malformed score filter or prompt reference in ``flt``, or a page token not handed out
        by a listing."""

    @abstractmethod
    def get_trace(self, trace_id: str) -> TraceDetail:
        """One trace with its spans and scores; ``trace_id`` may be a unique prefix of at
        least 6 characters. ``InvalidInput`` when ``trace_id`` is not lower-case hex or too
        short, ``NotFound`` when no span of it is stored (yet), ``Conflict`` when a prefix is
        ambiguous."""

    @abstractmethod
    def export(self, flt: TraceFilter, what: str) -> pa.Table:
        """The spans (``what="spans"``) or trace summaries (``what="traces"``) ``flt`` selects,
        as an Arrow table. ``InvalidInput`` for another ``what`` or a malformed filter."""

    @abstractmethod
    def add_score(self, body: ScoreCreate) -> Score:
        """Attach a score to a stored trace (or one of its spans), authored by the current
        user. ``NotFound`` when the trace or span is not stored; ``InvalidInput`` for a
        malformed trace id or a value that does not fit its ``data_type`` (a non-finite
        number, text where a number is due, a category over 250 characters)."""

    @abstractmethod
    def list_scores(self, trace_id: str | None, name: str | None) -> list[Score]:
        """The scores of one trace and/or with one name (``None`` for any), oldest first; no
        match is an empty list. ``trace_id`` may be a unique prefix of at least 6 characters
        (``NotFound`` when no trace has it, ``Conflict`` when several do). ``InvalidInput`` when
        ``trace_id`` is not hex or is too short."""

    @abstractmethod
    def delete_score(self, score_id: str) -> None:
        """Delete one score. ``NotFound`` when there is no such score."""

    @abstractmethod
    def list_prices(self) -> list[ModelPriceOut]:
        """Model prices in the order they are tried: the user's (most specific pattern first),
        then the shipped defaults. Raises nothing on purpose."""

    @abstractmethod
    def set_price(self, body: ModelPriceIn) -> ModelPriceOut:
        """Create or replace the user price for ``body.pattern`` (a regular expression model
        names must fully match); spans ingested from now on are costed with it.
        ``InvalidInput`` for a pattern that is empty, over 250 characters or not a regular
        expression."""

    @abstractmethod
    def delete_price(self, pattern: str) -> None:
        """Delete the user price for exactly ``pattern``. ``NotFound`` when there is none
        (a shipped default cannot be deleted, only overridden)."""

    @abstractmethod
    def trace_stats(self, query: StatsQuery) -> TraceStats:
        """LLM calls (spans naming a model) grouped by model, route, key or user, in total and
        per time bucket, with tokens, cost, error rate and p50/p95 latency. ``InvalidInput``
        for a range that ends before it starts or a bucket too narrow for it."""

    @abstractmethod
    def list_sessions(self, query: SessionQuery) -> Page[SessionSummary]:
        """Sessions (traces sharing a session id), the most recently active first.
        ``InvalidInput`` for a page token not handed out by a listing."""

    @abstractmethod
    def get_session(self, session_id: str) -> SessionDetail:
        """One session with its traces oldest first. ``NotFound`` when no trace has the id."""
