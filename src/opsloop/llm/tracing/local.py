"""The local tracing backend: the services in-process, one transaction per call."""

from __future__ import annotations

import pyarrow as pa

from opsloop.governance.masker import IngestMasking
from opsloop.kernel.identity import current_user
from opsloop.kernel.paging import Page
from opsloop.kernel.store_calls import StoreCalls
from opsloop.llm.tracing import export
from opsloop.llm.tracing import services
from opsloop.llm.tracing import stats
from opsloop.llm.tracing.backend import TracingBackend
from opsloop.llm.tracing.entities import IngestResult
from opsloop.llm.tracing.entities import ModelPriceIn
from opsloop.llm.tracing.entities import ModelPriceOut
from opsloop.llm.tracing.entities import Score
from opsloop.llm.tracing.entities import ScoreCreate
from opsloop.llm.tracing.entities import Trace
from opsloop.llm.tracing.entities import TraceDetail
from opsloop.llm.tracing.entities import TraceFilter
from opsloop.llm.tracing.masking import mask_spans
from opsloop.llm.tracing.records import SpanRecord
from opsloop.llm.tracing.stats import SessionDetail
from opsloop.llm.tracing.stats import SessionQuery
from opsloop.llm.tracing.stats import SessionSummary
from opsloop.llm.tracing.stats import StatsQuery
from opsloop.llm.tracing.stats import TraceStats
from opsloop.store.database import Store

__all__ = ["LocalTracingBackend"]


class LocalTracingBackend(StoreCalls, TracingBackend):
    """Traces in ``store``, read and written through the tracing services."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.masking = IngestMasking(store)

    def ingest(self, records: list[SpanRecord]) -> IngestResult:
        # in place, before anything is written: a server's spool writes these very records
        # to disk when the database is away (governance.masker says what it does then)
        mask_spans(self.masking.masker("traces"), records)
        return self._write(services.ingest, records)

    def list_traces(
        self, flt: TraceFilter, max_results: int, page_token: str | None
    ) -> Page[Trace]:
        return self._read(services.list_traces, flt, max_results, page_token)

    def get_trace(self, trace_id: str) -> TraceDetail:
        return self._read(services.get_trace, trace_id)

    def export(self, flt: TraceFilter, what: str) -> pa.Table:
        return self._read(export.export_table, flt, what)

    def add_score(self, body: ScoreCreate) -> Score:
        return self._write(services.add_score, body, author=current_user())

    def list_scores(self, trace_id: str | None, name: str | None) -> list[Score]:
        return self._read(services.list_scores, trace_id=trace_id, name=name)

    def delete_score(self, score_id: str) -> None:
        self._write(services.delete_score, score_id)

    def list_prices(self) -> list[ModelPriceOut]:
        return self._read(services.list_prices)

    def set_price(self, body: ModelPriceIn) -> ModelPriceOut:
        return self._write(services.set_price, body)

    def delete_price(self, pattern: str) -> None:
        self._write(services.delete_price, pattern)

    def trace_stats(self, query: StatsQuery) -> TraceStats:
        return self._read(stats.trace_stats, query)

    def list_sessions(self, query: SessionQuery) -> Page[SessionSummary]:
        return self._read(stats.list_sessions, query)

    def get_session(self, session_id: str) -> SessionDetail:
        return self._read(stats.get_session, session_id)
