"""OTLP/HTTP trace payloads: decoding protobuf and JSON requests into ``SpanRecord``s, and
encoding records as a protobuf request (what the SDK sends to a server).

OTLP/JSON differs from protobuf's own JSON mapping in that ids are hex, not base64, and 64-bit
integers may be strings; it is walked by hand here rather than through ``json_format``.
A payload that cannot be parsed at all is an ``InvalidInput`` (HTTP 400); a span that parses
but cannot be stored is rejected alone and reported as OTLP's partial success.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from opsloop.errors import InvalidInput
from opsloop.llm.tracing.records import SpanRecord
from opsloop.llm.tracing.semconv import otel_attributes
from opsloop.llm.tracing.semconv import record_from_otel

__all__ = ["Decoded", "decode_json", "decode_protobuf", "encode_protobuf", "response_body"]

PROTOBUF = "application/x-protobuf"


@dataclass
class Decoded:
    records: list[SpanRecord] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < 10:
            self.errors.append(reason)


# -- protobuf ---------------------------------------------------------------------------------
def _pb_value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_pb_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, which)


def _pb_attributes(attributes: Any) -> dict[str, Any]:
    return {kv.key: _pb_value(kv.value) for kv in attributes}


def decode_protobuf(body: bytes) -> Decoded:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise InvalidInput(f"not an OTLP protobuf ExportTraceServiceRequest: {exc}") from None
    out = Decoded()
    for resource_spans in request.resource_spans:
        resource = _pb_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    out.reject(f"span {span.name!r} has a malformed trace or span id")
                    continue
                try:
                    record = record_from_otel(
                        trace_id=trace_id,
                        span_id=span_id,
                        parent_span_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        status_code=span.status.code,
                        status_message=span.status.message,
                        attributes=_pb_attributes(span.attributes),
                        events=[
                            {
                                "name": e.name,
                                "time_ns": e.time_unix_nano,
                                "attributes": _pb_attributes(e.attributes),
                            }
                            for e in span.events
                        ],
                        resource=resource,
                    )
                except ValueError as exc:
                    out.reject(f"span {span.name!r}: {exc}")
                    continue
                out.records.append(record)
    return out


# -- JSON -------------------------------------------------------------------------------------
def _get(obj: dict[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    value = obj.get(camel)
    return obj.get(snake, default) if value is None else value


def _json_value(value: Any) -> Any:
    if not isinstance(value, dict) or not value:
        return None
    key, inner = next(iter(value.items()))
    if key in ("stringValue", "string_value", "boolValue", "bool_value", "doubleValue",
               "double_value", "bytesValue", "bytes_value"):  # fmt: skip
        return inner
    if key in ("intValue", "int_value"):
        return int(inner)
    if key in ("arrayValue", "array_value"):
        return [_json_value(v) for v in (inner or {}).get("values", [])]
    if key in ("kvlistValue", "kvlist_value"):
        return _json_attributes((inner or {}).get("values", []))
    raise ValueError(f"unknown attribute value type {key!r}")


def _json_attributes(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        raise ValueError("attributes must be a list of {key, value}")
    return {item["key"]: _json_value(item.get("value")) for item in items}


def _hex_id(value: Any, length: int) -> str:
    if not isinstance(value, str) or len(value) != length:
        raise ValueError(f"id {value!r} is not {length} hex digits")
    int(value, 16)
    return value.lower()


def _json_span(span: dict[str, Any], resource: dict[str, Any]) -> SpanRecord:
    parent = _get(span, "parentSpanId", "parent_span_id") or None
    status = span.get("status") or {}
    return record_from_otel(
        trace_id=_hex_id(_get(span, "traceId", "trace_id"), 32),
        span_id=_hex_id(_get(span, "spanId", "span_id"), 16),
        parent_span_id=_hex_id(parent, 16) if parent else None,
        name=str(span.get("name") or ""),
        start_ns=int(_get(span, "startTimeUnixNano", "start_time_unix_nano", 0)),
        end_ns=int(_get(span, "endTimeUnixNano", "end_time_unix_nano", 0)),
        status_code=int(status.get("code") or 0),
        status_message=status.get("message"),
        attributes=_json_attributes(span.get("attributes") or []),
        events=[
            {
                "name": e.get("name"),
                "time_ns": int(_get(e, "timeUnixNano", "time_unix_nano", 0)),
                "attributes": _json_attributes(e.get("attributes") or []),
            }
            for e in span.get("events") or []
        ],
        resource=resource,
    )


def decode_json(body: bytes) -> Decoded:
    try:
        payload = json.loads(body)
        resource_spans = _get(payload, "resourceSpans", "resource_spans", [])
        if not isinstance(resource_spans, list):
            raise TypeError("resourceSpans must be a list")
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"not an OTLP/JSON ExportTraceServiceRequest: {exc}") from None
    out = Decoded()
    for rs in resource_spans:
        try:
            resource = _json_attributes(((rs or {}).get("resource") or {}).get("attributes", []))
            scopes = _get(rs, "scopeSpans", "scope_spans", [])
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            out.reject(f"resource skipped: {exc}")
            continue
        for scope in scopes or []:
            for span in (scope or {}).get("spans") or []:
                try:
                    out.records.append(_json_span(span, resource))
                except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
                    name = span.get("name") if isinstance(span, dict) else None
                    out.reject(f"span {name!r}: {exc}")
    return out


def response_body(decoded: Decoded, protobuf: bool) -> bytes:
    """The ExportTraceServiceResponse: empty, or a partial success naming what was refused."""
    response = ExportTraceServiceResponse()
    if decoded.rejected:
        response.partial_success.rejected_spans = decoded.rejected
        response.partial_success.error_message = "; ".join(decoded.errors)
    if protobuf:
        return response.SerializeToString()
    if not decoded.rejected:
        return b"{}"
    return json.dumps(
        {
            "partialSuccess": {
                "rejectedSpans": str(decoded.rejected),
                "errorMessage": response.partial_success.error_message,
            }
        }
    ).encode()


# -- encoding ---------------------------------------------------------------------------------
def _any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, list | tuple):
        out = AnyValue()
        out.array_value.values.extend(_any_value(v) for v in value)
        return out
    if isinstance(value, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(
            KeyValue(key=str(k), value=_any_value(v)) for k, v in value.items()
        )
        return out
    return AnyValue(string_value=repr(value))


def _key_values(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_any_value(v)) for k, v in attributes.items() if v is not None]


def encode_protobuf(records: list[SpanRecord]) -> bytes:
    """``records`` as one OTLP ExportTraceServiceRequest, a resource per service name."""
    by_service: dict[str | None, list[SpanRecord]] = {}
    for record in records:
        by_service.setdefault(record.service, []).append(record)
    request = ExportTraceServiceRequest()
    for service, group in by_service.items():
        resource_spans: ResourceSpans = request.resource_spans.add()
        if service:
            resource_spans.resource.attributes.append(
                KeyValue(key="service.name", value=AnyValue(string_value=service))
            )
        scope = resource_spans.scope_spans.add()
        scope.scope.name = "opsloop"
        for record in group:
            span: Span = scope.spans.add()
            span.trace_id = bytes.fromhex(record.trace_id)
            span.span_id = bytes.fromhex(record.span_id)
            if record.parent_span_id:
                span.parent_span_id = bytes.fromhex(record.parent_span_id)
            span.name = record.name
            span.kind = Span.SPAN_KIND_INTERNAL
            span.start_time_unix_nano = record.start_ns
            span.end_time_unix_nano = record.end_ns
            span.attributes.extend(_key_values(otel_attributes(record)))
            for event in record.events:
                added = span.events.add()
                added.name = str(event.get("name") or "")
                added.time_unix_nano = int(event.get("time_ns") or record.end_ns)
                added.attributes.extend(_key_values(event.get("attributes") or {}))
            code = {"ok": Status.STATUS_CODE_OK, "error": Status.STATUS_CODE_ERROR}
            span.status.code = code.get(record.status, Status.STATUS_CODE_UNSET)
            if record.status_message:
                span.status.message = record.status_message
    return request.SerializeToString()
