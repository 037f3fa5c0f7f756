"""Span ingest with PII masking on vs off (issue 23: masking costs <= 10% of ingest throughput).

    .venv/bin/python bench/ingest_mask.py [--spans 20000] [--rounds 3] [--database-url URL]

What the server does for each OTLP/HTTP request, minus the socket: decode the protobuf body
(``otlp.decode_protobuf``) and ingest the records through ``LocalTracingBackend.ingest`` (the
masking, then one write transaction: spans inserted, traces re-summarised). The spans are
GenAI-shaped: an agent root, LLM calls with a ~530-character prompt and a ~180-character
completion in ``input.value`` / ``output.value``, tools and retrievers; one span in four carries
an e-mail, a phone number, a card or an IBAN in its text, the rest are clean prose with numbers
(dates, times, amounts, ids: no "has a digit" pre-filter skips them), and every text is unique
(the masker's cache of recent texts never hits: the worst case). Each round ingests the same
payloads (fresh ids) into a fresh SQLite file (or PostgreSQL schema) with masking off, then
with the seven entities masked as placeholders, then as keyed hashes; the order rotates each
round and the best round counts. The masking alone (``mask_spans`` over the decoded records)
is timed too.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from opsloop.governance.masker import IngestMasking
from opsloop.governance.masker import Masker
from opsloop.governance.masking import MaskingSet
from opsloop.governance.masking import set_masking
from opsloop.governance.pii import ENTITIES
from opsloop.llm.tracing.local import LocalTracingBackend
from opsloop.llm.tracing.masking import mask_spans
from opsloop.llm.tracing.otlp import decode_protobuf
from opsloop.schema import open_store

BATCH = 500
SPANS_PER_TRACE = 8
_PROSE = (
    "The customer asked about order 4471 placed on 2024-03-18 for 3 items totalling 129.90 EUR; "
    "delivery slot 14:00-16:00 was missed twice and the courier reference is ZX-88213. "
)
_PII = [
    "Please reach me at jane.roe{i}@example.org before Friday.",
    "My number is (415) 555-{p:04d}, call after five.",
    "Charge the card 4111 1111 1111 1111 again, it failed.",
    "Refund to DE89 3704 0044 0532 0130 00 please.",
]


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def payloads(total: int) -> list[bytes]:
    rng = random.Random()
    now = time.time_ns()
    kinds = ["AGENT", "RETRIEVER", "LLM", "TOOL", "LLM", "EMBEDDING", "LLM", "TOOL"]
    out, request, spans = [], ExportTraceServiceRequest(), None
    for i in range(total):
        if i % BATCH == 0:
            if spans is not None:
                out.append(request.SerializeToString())
            request = ExportTraceServiceRequest()
            resource = request.resource_spans.add()
            resource.resource.attributes.append(_kv("service.name", "bench"))
            spans = resource.scope_spans.add().spans
        if i % SPANS_PER_TRACE == 0:
            trace_id, root = rng.randbytes(16), rng.randbytes(8)
        span = spans.add()
        span.trace_id, span.span_id = (
            trace_id,
            root if i % SPANS_PER_TRACE == 0 else rng.randbytes(8),
        )
        if i % SPANS_PER_TRACE:
            span.parent_span_id = root
        span.name = f"step-{i % SPANS_PER_TRACE}"
        span.start_time_unix_nano, span.end_time_unix_nano = now + i * 1000, now + i * 1000 + 9
        kind = kinds[i % SPANS_PER_TRACE]
        pii = _PII[i % 4].format(i=i, p=i % 10_000) if i % 4 == 0 else ""
        prose = _PROSE.replace("4471", str(i)).replace("88213", str(rng.randrange(10**5)))
        prompt = (prose * 3)[: 600 - len(pii)] + pii  # every text unique: the cache never hits
        span.attributes.extend([
            _kv("openinference.span.kind", kind), _kv("input.value", prompt),
            _kv("output.value", f"span {i}: " + prose[:290]), _kv("session.id", f"s{i // 64}"),
            _kv("user.id", f"u{i % 50}"),
        ])  # fmt: skip
        if kind == "LLM":
            span.attributes.extend([_kv("llm.model_name", "gpt-4o-mini"),
                                    _kv("llm.token_count.prompt", 300 + i % 100)])  # fmt: skip
    out.append(request.SerializeToString())
    return out


def ingest_once(url: str, mode: str | None, bodies: list[bytes]) -> float:
    """Seconds to decode and ingest ``bodies`` into a fresh store with masking ``mode``."""
    store = open_store(url)
    try:
        if mode is not None:
            with store.write() as session:
                set_masking(session, MaskingSet(streams=["traces"], entities=list(ENTITIES),
                                                mode=mode), "bench")  # fmt: skip
        backend = LocalTracingBackend(store)
        backend.masking = IngestMasking(store)
        started = time.perf_counter()
        for body in bodies:
            backend.ingest(decode_protobuf(body).records)
        return time.perf_counter() - started
    finally:
        store.dispose()


def mask_only(bodies: list[bytes], masker: Masker) -> float:
    records = [r for body in bodies for r in decode_protobuf(body).records]
    started = time.perf_counter()
    mask_spans(masker, records)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    modes: list[str | None] = [None, "placeholder", "hash"]
    best: dict[str | None, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for n in range(args.rounds):
            for mode in modes[n % 3 :] + modes[: n % 3]:
                bodies = payloads(args.spans)  # fresh ids: each run stores every span
                url = args.database_url or f"sqlite:///{Path(folder) / f'{n}-{mode}.db'}"
                seconds = ingest_once(url, mode, bodies)
                best[mode] = min(best.get(mode, float("inf")), seconds)
    bodies = payloads(args.spans)
    alone = {
        "placeholder": mask_only(bodies, Masker(ENTITIES)),
        "hash": mask_only(payloads(args.spans), Masker(ENTITIES, "hash", "k" * 64)),
    }
    off = best[None]
    print(f"span ingest (decode + mask + store), {args.spans:,} spans, {BATCH} per batch, "
          f"best of {args.rounds}")  # fmt: skip
    print(f"{'masking':<14}{'seconds':>9}{'spans/s':>10}{'cost':>10}{'mask alone':>18}")
    for mode in modes:
        name = mode or "off"
        cost = f"{(best[mode] / off - 1) * 100:+.1f}%" if mode else ""
        only = f"{alone[mode] * 1e6 / args.spans:.1f} us/span" if mode else ""
        print(f"{name:<14}{best[mode]:>9.3f}{args.spans / best[mode]:>10,.0f}{cost:>10}{only:>18}")


if __name__ == "__main__":
    main()
