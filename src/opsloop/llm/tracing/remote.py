"""The remote tracing backend: spans as OTLP protobuf to ``/v1/traces``, the rest over REST."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from pydantic import TypeAdapter

from opsloop.kernel.paging import Page
from opsloop.kernel.transport import HttpTransport
from opsloop.llm.tracing import routes
from opsloop.llm.tracing.backend import TracingBackend
from opsloop.llm.tracing.entities import IngestResult
from opsloop.llm.tracing.entities import ModelPriceIn
from opsloop.llm.tracing.entities import ModelPriceOut
from opsloop.llm.tracing.entities import Score
from opsloop.llm.tracing.entities import ScoreCreate
from opsloop.llm.tracing.entities import Trace
from opsloop.llm.tracing.entities import TraceDetail
from opsloop.llm.tracing.entities import TraceFilter
from opsloop.llm.tracing.otlp import PROTOBUF
from opsloop.llm.tracing.otlp import encode_protobuf
from opsloop.llm.tracing.records import SpanRecord
from opsloop.llm.tracing.stats import SessionDetail
from opsloop.llm.tracing.stats import SessionQuery
from opsloop.llm.tracing.stats import SessionSummary
from opsloop.llm.tracing.stats import StatsQuery
from opsloop.llm.tracing.stats import TraceStats

__all__ = ["RemoteTracingBackend"]

_TRACES = TypeAdapter(Page[Trace])
_SCORES = TypeAdapter(list[Score])
_PRICES = TypeAdapter(list[ModelPriceOut])
_SESSIONS = TypeAdapter(Page[SessionSummary])


class RemoteTracingBackend(TracingBackend):
    """Traces on an opsloop server; errors come back as the same ``OpsloopError`` classes."""

    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport

    def ingest(self, records: list[SpanRecord]) -> IngestResult:
        response = self.http.request(
            "POST",
            routes.OTLP_TRACES.url(),
            content=encode_protobuf(records),
            headers={"Content-Type": PROTOBUF},
        )
        reply = ExportTraceServiceResponse.FromString(response.content).partial_success
        errors = [reply.error_message] if reply.error_message else []
        rejected = reply.rejected_spans
        return IngestResult(accepted=len(records) - rejected, rejected=rejected, errors=errors)

    def list_traces(
        self, flt: TraceFilter, max_results: int, page_token: str | None
    ) -> Page[Trace]:
        params: dict[str, Any] = flt.query_params() | {"max_results": max_results}
        if page_token:
            params["page_token"] = page_token
        return _TRACES.validate_python(self.http.json("GET", routes.TRACES.url(), params=params))

    def get_trace(self, trace_id: str) -> TraceDetail:
        return TraceDetail.model_validate(
            self.http.json("GET", routes.TRACE.url(trace_id=trace_id))
        )

    def export(self, flt: TraceFilter, what: str) -> pa.Table:
        params = flt.query_params() | {"what": what}
        response = self.http.request("GET", routes.TRACE_EXPORTS.url(), params=params)
        return pq.read_table(io.BytesIO(response.content))

    def add_score(self, body: ScoreCreate) -> Score:
        data = self.http.json(
            "POST", routes.SCORES.url(), json=body.model_dump(mode="json"), idempotent=False
        )
        return Score.model_validate(data)

    def list_scores(self, trace_id: str | None, name: str | None) -> list[Score]:
        params = {k: v for k, v in {"trace_id": trace_id, "name": name}.items() if v}
        return _SCORES.validate_python(self.http.json("GET", routes.SCORES.url(), params=params))

    def delete_score(self, score_id: str) -> None:
        self.http.request("DELETE", routes.SCORE.url(score_id=score_id))

    def list_prices(self) -> list[ModelPriceOut]:
        return _PRICES.validate_python(self.http.json("GET", routes.MODEL_PRICES.url()))

    def set_price(self, body: ModelPriceIn) -> ModelPriceOut:
        data = self.http.json("PUT", routes.MODEL_PRICES.url(), json=body.model_dump())
        return ModelPriceOut.model_validate(data)

    def delete_price(self, pattern: str) -> None:
        self.http.request("DELETE", routes.MODEL_PRICES.url(), params={"pattern": pattern})

    def trace_stats(self, query: StatsQuery) -> TraceStats:
        params = query.model_dump(exclude_none=True)
        return TraceStats.model_validate(
            self.http.json("GET", routes.TRACE_STATS.url(), params=params)
        )

    def list_sessions(self, query: SessionQuery) -> Page[SessionSummary]:
        params = query.model_dump(exclude_none=True)
        return _SESSIONS.validate_python(
            self.http.json("GET", routes.TRACE_SESSIONS.url(), params=params)
        )

    def get_session(self, session_id: str) -> SessionDetail:
        return SessionDetail.model_validate(
            self.http.json("GET", routes.TRACE_SESSION.url(session=session_id))
        )
