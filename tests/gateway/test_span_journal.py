"""Gateway spans go through the span journal to a writer process: a burst of calls all land,
a gateway killed (writer and all) loses none of the spans it journaled (the next gateway's
writer stores the abandoned journal), and a full backlog refuses spans, counted, never queued
in memory."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from opsloop.app.gateway import build_gateway
from opsloop.errors import StoreError
from opsloop.kernel.metrics import REGISTRY
from opsloop.llm.gateway.config import parse_config
from opsloop.llm.gateway.ports import Caller
from opsloop.llm.gateway.spans import SpanSink
from opsloop.llm.tracing.journal import SpanJournal
from opsloop.llm.tracing.journal import segments
from opsloop.llm.tracing.records import SpanRecord
from opsloop.schema import open_store
from tests.gateway.upstream_server import Upstream

BODY = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}).encode()


def _count(store: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("select count(*) from spans").scalar_one())


def _span(i: int) -> SpanRecord:
    now = time.time_ns()
    return SpanRecord(trace_id=os.urandom(16).hex(), span_id=os.urandom(8).hex(),
                      name=f"chat {i}", start_ns=now, end_ns=now, kind="llm")  # fmt: skip


def test_a_burst_of_calls_all_land_through_the_writer_process(
    upstream: Upstream, sqlite_url: str, tmp_path: Path
) -> None:
    store = open_store(sqlite_url)
    route = {"name": "chat", "targets": [{"name": "up", "base_url": upstream.url("ok")}]}
    config = parse_config({"routes": [route], "auth": "open"})

    async def burst() -> int:
        gateway = build_gateway(config, store=store, spool_folder=tmp_path / "spool")
        answers = await asyncio.gather(*(gateway.chat(Caller(), BODY) for _ in range(400)))
        assert gateway.sink is not None and gateway.sink._writer is not None
        writer = gateway.sink._writer._proc
        assert writer is not None and writer.pid != os.getpid()  # stored in its own process
        await gateway.aclose()
        assert writer.returncode == 0
        return len(answers)

    assert asyncio.run(burst()) == 400
    assert _count(store) == 400
    with store.engine.connect() as conn:
        inputs = conn.exec_driver_sql("select distinct input from spans").scalars().all()
    assert inputs == ['[{"role": "user", "content": "hi"}]']
    assert not list((tmp_path / "spool" / "journal").iterdir())  # stored, then deleted
    store.dispose()


_KILLED = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from opsloop.llm.gateway.spans import SpanSink
    from opsloop.llm.tracing.records import SpanRecord

    sink = SpanSink(Path(sys.argv[1]), database_url=sys.argv[2])
    sink.put(SpanRecord(trace_id="a" * 32, span_id="1" * 16, name="first", start_ns=1, end_ns=2))
    os.kill(sink._writer._proc.pid, signal.SIGKILL)  # the writer dies before storing a thing
    sink._writer._proc.wait()
    for i in range(int(sys.argv[3])):
        now = time.time_ns()
        sink.put(SpanRecord(trace_id=os.urandom(16).hex(), span_id=os.urandom(8).hex(),
                            name=f"chat {i}", start_ns=now, end_ns=now))
    print("journaled", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # the gateway too, mid-flight
    """
)


def test_a_killed_gateway_loses_no_journaled_span(sqlite_url: str, tmp_path: Path) -> None:
    store = open_store(sqlite_url)
    folder = tmp_path / "journal"
    killed = subprocess.run([sys.executable, "-c", _KILLED, str(folder), store.url, "3000"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert killed.stdout == "journaled\n", killed.stderr
    assert killed.returncode == -9
    assert _count(store) == 0  # nothing stored: all of it waits in the dead gateway's journal

    restarted = SpanSink(folder, database_url=store.url)  # the gateway started again
    restarted.put(_span(0))
    restarted.close()
    assert _count(store) == 3002
    assert not list(folder.iterdir())
    store.dispose()


def test_the_backlog_on_disk_is_bounded_and_refusals_are_counted(tmp_path: Path) -> None:
    journal = SpanJournal(tmp_path, segment_bytes=2000, max_backlog_bytes=6000)
    written = [journal.append(_span(i)) for i in range(200)]  # no writer: the backlog fills
    accepted = sum(written)
    assert 10 < accepted < 100 and written == [True] * accepted + [False] * (200 - accepted)
    assert len(segments(journal.folder)) == journal.max_segments + 1
    journal.close()

    def away(records: list[SpanRecord]) -> None:
        raise StoreError("the database is away")

    before = REGISTRY.get_sample_value("opsloop_gateway_spans_dropped_total") or 0.0
    sink = SpanSink(tmp_path / "sink", ingest=away, segment_bytes=2000, max_backlog_bytes=6000)
    for i in range(200):
        sink.put(_span(i))
    assert sink.dropped == 200 - accepted
    after = REGISTRY.get_sample_value("opsloop_gateway_spans_dropped_total")
    assert after == before + sink.dropped
    sink.close(timeout_s=0.2)  # the writer cannot store: the journal stays for the next one
    assert sum(len(segments(f)) for f in (tmp_path / "sink").iterdir()) == journal.max_segments + 1
