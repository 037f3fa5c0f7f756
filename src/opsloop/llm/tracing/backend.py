"""The tracing backend contract and its two implementations: in-process services or REST.

Spans go to a server as OTLP protobuf on ``/v1/traces``, the very endpoint OpenTelemetry
exporters use, so the SDK and third-party instrumentation share one ingest path.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from pydantic import TypeAdapter

from opsloop.kernel.identity import current_user
from opsloop.kernel.paging import Page
from opsloop.kernel.transport import HttpTransport
from opsloop.llm.tracing import services
from opsloop.llm.tracing.entities import (
    IngestResult,
    ModelPriceIn,
    ModelPriceOut,
    Score,
    ScoreCreate,
    Trace,
    TraceDetail,
    TraceFilter,
)
from opsloop.llm.tracing.otlp import PROTOBUF, encode_protobuf
from opsloop.llm.tracing.records import SpanRecord
from opsloop.store.database import Store

__all__ = ["HttpTracingBackend", "LocalTracingBackend", "TracingBackend"]

_TRACES = TypeAdapter(Page[Trace])
_SCORES = TypeAdapter(list[Score])
_PRICES = TypeAdapter(list[ModelPriceOut])


class TracingBackend(ABC):
    @abstractmethod
    def ingest(self, records: list[SpanRecord]) -> IngestResult: ...

    @abstractmethod
    def list_traces(
        self, flt: TraceFilter, max_results: int, page_token: str | None
    ) -> Page[Trace]: ...

    @abstractmethod
    def get_trace(self, trace_id: str) -> TraceDetail: ...

    @abstractmethod
    def export(self, flt: TraceFilter, what: str) -> pa.Table: ...

    @abstractmethod
    def add_score(self, body: ScoreCreate) -> Score: ...

    @abstractmethod
    def list_scores(self, trace_id: str | None, name: str | None) -> list[Score]: ...

    @abstractmethod
    def delete_score(self, score_id: str) -> None: ...

    @abstractmethod
    def list_prices(self) -> list[ModelPriceOut]: ...

    @abstractmethod
    def set_price(self, body: ModelPriceIn) -> ModelPriceOut: ...

    @abstractmethod
    def delete_price(self, pattern: str) -> None: ...


class LocalTracingBackend(TracingBackend):
    def __init__(self, store: Store) -> None:
        self.store = store

    def ingest(self, records: list[SpanRecord]) -> IngestResult:
        with self.store.write() as s:
            return services.ingest(s, records)

    def list_traces(
        self, flt: TraceFilter, max_results: int, page_token: str | None
    ) -> Page[Trace]:
        with self.store.read() as s:
            return services.list_traces(s, flt, max_results, page_token)

    def get_trace(self, trace_id: str) -> TraceDetail:
        with self.store.read() as s:
            return services.get_trace(s, trace_id)

    def export(self, flt: TraceFilter, what: str) -> pa.Table:
        with self.store.read() as s:
            return services.export_table(s, flt, what)

    def add_score(self, body: ScoreCreate) -> Score:
        with self.store.write() as s:
            return services.add_score(s, body, author=current_user())

    def list_scores(self, trace_id: str | None, name: str | None) -> list[Score]:
        with self.store.read() as s:
            return services.list_scores(s, trace_id=trace_id, name=name)

    def delete_score(self, score_id: str) -> None:
        with self.store.write() as s:
            services.delete_score(s, score_id)

    def list_prices(self) -> list[ModelPriceOut]:
        with self.store.read() as s:
            return services.list_prices(s)

    def set_price(self, body: ModelPriceIn) -> ModelPriceOut:
        with self.store.write() as s:
            return services.set_price(s, body)

    def delete_price(self, pattern: str) -> None:
        with self.store.write() as s:
            services.delete_price(s, pattern)


class HttpTracingBackend(TracingBackend):
    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport

    def ingest(self, records: list[SpanRecord]) -> IngestResult:
        response = self.http.request(
            "POST",
            "/v1/traces",
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
        return _TRACES.validate_python(
            self.http.request("GET", "/api/traces", params=params).json()
        )

    def get_trace(self, trace_id: str) -> TraceDetail:
        response = self.http.request("GET", f"/api/traces/{quote(trace_id)}")
        return TraceDetail.model_validate(response.json())

    def export(self, flt: TraceFilter, what: str) -> pa.Table:
        params = flt.query_params() | {"what": what}
        response = self.http.request("GET", "/api/trace-exports", params=params)
        return pq.read_table(io.BytesIO(response.content))

    def add_score(self, body: ScoreCreate) -> Score:
        response = self.http.request(
            "POST", "/api/scores", json=body.model_dump(mode="json"), idempotent=False
        )
        return Score.model_validate(response.json())

    def list_scores(self, trace_id: str | None, name: str | None) -> list[Score]:
        params = {k: v for k, v in {"trace_id": trace_id, "name": name}.items() if v}
        return _SCORES.validate_python(
            self.http.request("GET", "/api/scores", params=params).json()
        )

    def delete_score(self, score_id: str) -> None:
        self.http.request("DELETE", f"/api/scores/{quote(score_id)}")

    def list_prices(self) -> list[ModelPriceOut]:
        return _PRICES.validate_python(self.http.request("GET", "/api/model-prices").json())

    def set_price(self, body: ModelPriceIn) -> ModelPriceOut:
        response = self.http.request("PUT", "/api/model-prices", json=body.model_dump())
        return ModelPriceOut.model_validate(response.json())

    def delete_price(self, pattern: str) -> None:
        self.http.request("DELETE", "/api/model-prices", params={"pattern": pattern})
