"""Span ingest over OTLP/HTTP: opsloop's server vs Arize Phoenix's collector, side by side.

    ./dev bench bench/tracing.py
    .venv/bin/python bench/tracing.py --quick

Both servers run as their own processes on loopback with their embedded defaults in fresh
temp folders (SQLite), plus opsloop on PostgreSQL. Each gets the same pre-encoded OTLP protobuf
payloads: traces of 8 spans in OpenInference's conventions (both parse them; Phoenix natively)
with a model, token counts and ~200-character inputs and outputs, 512 spans per request (the
OpenTelemetry SDK's default batch). The clock starts at the first request and stops when the
server's database holds every span (Phoenix acknowledges before it writes, opsloop after), read
straight from each tool's own database. Sent by 1 exporter (requests in sequence), then by 4 at
once. Prints spans/s for each and the ratio.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

BIN = Path(sys.executable).parent
PG_BASE = os.environ.get("OPSLOOP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BATCH = 512
SPANS_PER_TRACE = 8


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def payloads(total: int) -> list[bytes]:
    """``total`` spans as OTLP protobuf requests of ``BATCH`` spans."""
    rng = random.Random()  # fresh ids on every call: stores skip spans they already hold
    now = time.time_ns()
    kinds = ["CHAIN", "RETRIEVER", "LLM", "TOOL", "LLM", "EMBEDDING", "LLM", "TOOL"]
    out: list[bytes] = []
    request = ExportTraceServiceRequest()
    spans = None
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
        span.trace_id = trace_id
        span.span_id = root if i % SPANS_PER_TRACE == 0 else rng.randbytes(8)
        if i % SPANS_PER_TRACE:
            span.parent_span_id = root
        span.name = f"step-{i % SPANS_PER_TRACE}"
        span.start_time_unix_nano = now + i * 1000
        span.end_time_unix_nano = now + i * 1000 + 250_000
        span.status.code = 1
        kind = kinds[i % SPANS_PER_TRACE]
        span.attributes.extend(
            [
                _kv("openinference.span.kind", kind),
                _kv("input.value", f"question {i}: " + "lorem ipsum dolor " * 10),
                _kv("output.value", f"answer {i}: " + "sit amet consectetur " * 10),
                _kv("session.id", f"s{i // 64}"),
                _kv("user.id", f"u{i % 50}"),
            ]
        )
        if kind == "LLM":
            span.attributes.extend(
                [
                    _kv("llm.model_name", "gpt-4o-mini"),
                    _kv("llm.token_count.prompt", 300 + i % 100),
                    _kv("llm.token_count.completion", 50 + i % 30),
                ]
            )
    out.append(request.SerializeToString())
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not come up")


def send(url: str, bodies: list[bytes], senders: int) -> None:
    headers = {"Content-Type": "application/x-protobuf"}

    def post_all(part: list[bytes]) -> None:
        with httpx.Client(timeout=120) as http:
            for body in part:
                response = http.post(url, content=body, headers=headers)
                response.raise_for_status()

    parts = [bodies[i::senders] for i in range(senders)]
    with ThreadPoolExecutor(senders) as pool:
        for future in [pool.submit(post_all, p) for p in parts]:
            future.result()


def wait_count(count: callable, total: int, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while count() < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {count()} of {total} spans stored after {timeout}s")
        time.sleep(0.05)


def sqlite_count(path: Path, table: str) -> callable:
    def count() -> int:
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
                return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        except sqlite3.OperationalError:
            return 0

    return count


def measure(url: str, bodies: list[bytes], total: int, senders: int, count: callable) -> float:
    before = count()
    start = time.perf_counter()
    send(url, bodies, senders)
    wait_count(lambda: count() - before, total)
    return time.perf_counter() - start


def opsloop_server(folder: Path, database_url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, OPSLOOP_HOME=str(folder))
    store_options = ["--database-url", database_url, "--blob-url", str(folder / "blobs")]
    proc = subprocess.Popen(
        [str(BIN / "opsloop"), "server", "--port", str(port), *store_options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz", proc)
    return proc, url


def phoenix_server(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(
        os.environ,
        PHOENIX_WORKING_DIR=str(folder),
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(free_port()),
        PHOENIX_TELEMETRY_ENABLED="false",
    )
    phoenix = os.environ.get("PHOENIX_BIN") or str(BIN / "phoenix")  # ./dev bench sets it
    proc = subprocess.Popen(
        [phoenix, "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz", proc)
    return proc, url


def pg_database() -> tuple[str, object]:
    import sqlalchemy as sa

    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return PG_BASE.rsplit("/", 1)[0] + f"/{name}", admin


def pg_count(url: str) -> callable:
    import sqlalchemy as sa

    engine = sa.create_engine(url)

    def count() -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM spans")).scalar())

    return count


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 spans instead of 20,000")
    parser.add_argument("--spans", type=int, help="spans per measurement")
    args = parser.parse_args()
    total = args.spans or (5_000 if args.quick else 20_000)
    total -= total % SPANS_PER_TRACE
    results: list[tuple[str, float, float | None]] = []
    root = Path(tempfile.mkdtemp(prefix="bench-tracing-"))
    try:
        ours, ours_url = opsloop_server(root / "opsloop", f"sqlite:///{root / 'opsloop.db'}")
        ours_count = sqlite_count(root / "opsloop.db", "spans")
        phoenix, phoenix_url = phoenix_server(root / "phoenix")
        phoenix_count = sqlite_count(root / "phoenix" / "phoenix.db", "spans")
        for senders in (1, 4):
            bodies = payloads(total)  # fresh ids: each run stores new spans
            t_ours = measure(ours_url + "/v1/traces", bodies, total, senders, ours_count)
            bodies = payloads(total)
            t_peer = measure(phoenix_url + "/v1/traces", bodies, total, senders, phoenix_count)
            results.append((f"SQLite, {senders} sender(s)", total / t_ours, total / t_peer))
        stop(ours)
        stop(phoenix)
        try:
            url, admin = pg_database()
        except Exception as exc:  # the PostgreSQL line is optional
            print(f"(PostgreSQL skipped: {exc})")
        else:
            pg, pg_url = opsloop_server(root / "opsloop-pg", url)
            for senders in (1, 4):
                t = measure(pg_url + "/v1/traces", payloads(total), total, senders, pg_count(url))
                results.append((f"opsloop on PostgreSQL, {senders} sender(s)", total / t, None))
            stop(pg)
            import sqlalchemy as sa

            with admin.connect() as conn:  # type: ignore[attr-defined]
                conn.execute(sa.text(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nspan ingest over OTLP/HTTP, {total:,} spans per line, {BATCH} per request")
    for name, ours_rate, peer_rate in results:
        if peer_rate is None:
            print(f"{name:<40} opsloop {ours_rate:9,.0f} spans/s")
        else:
            print(
                f"{name:<40} opsloop {ours_rate:9,.0f} spans/s  phoenix {peer_rate:9,.0f} spans/s"
                f"  ratio {ours_rate / peer_rate:6.1f}x"
            )


if __name__ == "__main__":
    main()
