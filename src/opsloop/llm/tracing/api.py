"""Tracing over HTTP: OTLP/HTTP ingest at ``/v1/traces`` (protobuf and JSON), and the REST
routes under ``/api`` for traces, exports, scores and model prices."""

from __future__ import annotations

import gzip
import io
import zlib
from typing import Annotated

import pyarrow.parquet as pq
from fastapi import APIRouter
from fastapi import Depends
from fastapi import Query
from fastapi import Request
from fastapi import Response
from fastapi import status
from fastapi.concurrency import run_in_threadpool
from pydantic import ConfigDict

from opsloop.errors import InvalidInput
from opsloop.errors import PayloadTooLarge
from opsloop.kernel.identity import current_user
from opsloop.kernel.paging import Page
from opsloop.llm.tracing import export
from opsloop.llm.tracing import routes
from opsloop.llm.tracing import services
from opsloop.llm.tracing import stats
from opsloop.llm.tracing.entities import ModelPriceIn
from opsloop.llm.tracing.entities import ModelPriceOut
from opsloop.llm.tracing.entities import Score
from opsloop.llm.tracing.entities import ScoreCreate
from opsloop.llm.tracing.entities import Trace
from opsloop.llm.tracing.entities import TraceDetail
from opsloop.llm.tracing.entities import TraceFilter
from opsloop.llm.tracing.local import LocalTracingBackend
from opsloop.llm.tracing.otlp import PROTOBUF
from opsloop.llm.tracing.otlp import decode_json
from opsloop.llm.tracing.otlp import decode_protobuf
from opsloop.llm.tracing.otlp import response_body
from opsloop.llm.tracing.spool import IngestSpool
from opsloop.llm.tracing.stats import SessionDetail
from opsloop.llm.tracing.stats import SessionQuery
from opsloop.llm.tracing.stats import SessionSummary
from opsloop.llm.tracing.stats import StatsQuery
from opsloop.llm.tracing.stats import TraceStats
from opsloop.web.deps import AppState
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State
from opsloop.web.deps import WriteSession
from opsloop.web.limits import BodyLimit

__all__ = ["BODY_LIMITS", "open_spool", "otlp_router", "router"]

router = APIRouter(tags=["traces"])
otlp_router = APIRouter(tags=["otlp"])

MAX_OTLP_BYTES = 64 * 1024 * 1024
BODY_LIMITS = [BodyLimit("POST", routes.OTLP_TRACES, MAX_OTLP_BYTES)]  # as sent (compressed)


def open_spool(state: AppState) -> IngestSpool:
    """The app's ingest spool; opening it starts replaying batches an earlier run left."""
    backend = LocalTracingBackend(state.store)
    return IngestSpool(state.settings.home / "spool" / "traces", backend.ingest)


async def _body(request: Request) -> bytes:
    body = await request.body()  # at most MAX_OTLP_BYTES: BODY_LIMITS refuses more
    encoding = request.headers.get("content-encoding", "").lower()
    try:
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding not in ("", "identity"):
            raise InvalidInput(f"unsupported Content-Encoding {encoding!r}: use gzip or none")
    except (OSError, zlib.error, EOFError) as exc:
        raise InvalidInput(f"payload is not valid {encoding}: {exc}") from None
    if len(body) > MAX_OTLP_BYTES:
        raise PayloadTooLarge(
            f"OTLP payload of {len(body):,} bytes uncompressed is over the limit of "
            f"{MAX_OTLP_BYTES:,} bytes; export smaller batches",
            details={"limit": MAX_OTLP_BYTES},
        )
    return body


@otlp_router.post(routes.OTLP_TRACES.template, summary="OTLP/HTTP trace ingest (protobuf or JSON)")
async def otlp_traces(request: Request, state: State) -> Response:
    """Accepts an ``ExportTraceServiceRequest`` as ``application/x-protobuf`` or
    ``application/json``, optionally gzip-compressed. Spans that cannot be stored are left out
    and counted in the response's ``partial_success``; the rest of the batch is kept. A
    payload that does not parse at all is a 400."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in (PROTOBUF, "application/json"):
        raise InvalidInput(
            f"Content-Type {content_type or '(none)'!r} is not OTLP: send "
            f"{PROTOBUF} or application/json"
        )
    protobuf = content_type == PROTOBUF
    body = await _body(request)
    decoded = decode_protobuf(body) if protobuf else decode_json(body)
    result = await run_in_threadpool(state.trace_spool.accept, decoded.records)
    decoded.rejected += result.rejected
    decoded.errors.extend(result.errors)
    return Response(
        response_body(decoded, protobuf), media_type=PROTOBUF if protobuf else "application/json"
    )


class _TraceQuery(TraceFilter):
    """A :class:`TraceFilter` read from query parameters. The endpoint's own parameters
    (``max_results``, ``page_token``, ``what``) reach it too, so it passes over names it does
    not know instead of refusing them."""

    model_config = ConfigDict(extra="ignore")


def _filter(flt: Annotated[_TraceQuery, Query()]) -> TraceFilter:
    return flt


Filter = Annotated[TraceFilter, Depends(_filter)]


@router.get(routes.TRACES.template)
def list_traces(
    flt: Filter,
    session: ReadSession,
    max_results: int = Query(100, ge=1, le=10_000),
    page_token: str | None = None,
) -> Page[Trace]:
    """Traces newest first, narrowed by every filter given (``scores=helpfulness>=0.5``)."""
    return services.list_traces(session, flt, max_results, page_token)


@router.get(routes.TRACE.template)
def get_trace(trace_id: str, session: ReadSession) -> TraceDetail:
    return services.get_trace(session, trace_id)


@router.get(routes.TRACE_EXPORTS.template, response_class=Response)
def export_traces(flt: Filter, session: ReadSession, what: str = "spans") -> Response:
    """The matching spans (or ``what=traces``) as a Parquet file."""
    table = export.export_table(session, flt, what)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return Response(
        sink.getvalue(),
        media_type="application/vnd.apache.parquet",
        headers={"Content-Disposition": f'attachment; filename="{what}.parquet"'},
    )


@router.post(routes.SCORES.template, status_code=status.HTTP_201_CREATED)
def add_score(body: ScoreCreate, session: WriteSession) -> Score:
    return services.add_score(session, body, author=current_user())


@router.get(routes.SCORES.template)
def list_scores(
    session: ReadSession, trace_id: str | None = None, name: str | None = None
) -> list[Score]:
    return services.list_scores(session, trace_id=trace_id, name=name)


@router.delete(routes.SCORE.template, status_code=status.HTTP_204_NO_CONTENT)
def delete_score(score_id: str, session: WriteSession) -> None:
    services.delete_score(session, score_id)


@router.get(routes.MODEL_PRICES.template)
def list_prices(session: ReadSession) -> list[ModelPriceOut]:
    return services.list_prices(session)


@router.put(routes.MODEL_PRICES.template)
def set_price(body: ModelPriceIn, session: WriteSession) -> ModelPriceOut:
    return services.set_price(session, body)


@router.delete(routes.MODEL_PRICES.template, status_code=status.HTTP_204_NO_CONTENT)
def delete_price(pattern: str, session: WriteSession) -> None:
    services.delete_price(session, pattern)


@router.get(routes.TRACE_STATS.template)
def trace_stats(query: Annotated[StatsQuery, Query()], session: ReadSession) -> TraceStats:
    """LLM calls (spans naming a model) grouped ``by`` model, route, key or user: calls,
    errors, tokens, cost and p50/p95 latency in total, per group, and per time bucket."""
    return stats.trace_stats(session, query)


@router.get(routes.TRACE_SESSIONS.template)
def list_sessions(
    query: Annotated[SessionQuery, Query()], session: ReadSession
) -> Page[SessionSummary]:
    """Sessions (traces sharing a session id), the most recently active first."""
    return stats.list_sessions(session, query)


@router.get(routes.TRACE_SESSION.template)
def get_session(session: str, db: ReadSession) -> SessionDetail:
    """One session: its totals and its traces oldest first."""
    return stats.get_session(db, session)
