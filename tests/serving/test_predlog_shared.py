"""One prediction log across replicas: each replica's ``PredictionLog`` (its own folder, as on
its own host) seals into one moto S3 bucket, optionally journaling to one Redis Stream on the
Redis at 127.0.0.1:6379 (a key prefix per test); any reader counts every replica's rows once.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import redis
from prometheus_client import generate_latest

from opsloop.config import Settings
from opsloop.kernel.metrics import REGISTRY
from opsloop.serving.predlog import PredictionLog
from opsloop.serving.predlog import PredictionReader
from opsloop.serving.predlog_privacy import delete_older_than
from opsloop.serving.predlog_privacy import erase_user
from opsloop.serving.predlog_rows import partitions
from opsloop.serving.predlog_shared import SharedLog
from opsloop.serving.predlog_shared import shared_log
from opsloop.serving.predlog_shared import shared_store_url
from opsloop.serving.predlog_stream import PredictionStream
from tests.conftest import free_port

pytestmark = pytest.mark.s3
REDIS_URL = "redis://127.0.0.1:6379/0"
BASE = 1_700_000_000_000


@pytest.fixture
def stream_key() -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis, removed afterwards."""
    key = f"opsloop-test-predlog:{uuid.uuid4().hex[:10]}"
    yield key
    client = redis.Redis.from_url(REDIS_URL)
    for name in client.scan_iter(f"{key}:*"):
        client.delete(name)
    client.close()


def _settings(tmp_path: Path, s3: tuple[str, dict[str, Any]], **more: Any) -> Settings:
    url, options = s3
    return Settings(home=tmp_path, database_url="sqlite://", blob_url=url,
                    storage_options=options, **more)  # fmt: skip


def _row(replica: int, i: int, ts_ms: int | None = None) -> dict[str, Any]:
    return {"request_id": f"r{replica}-{i}", "deployment": "d", "model": "m", "version": 1,
            "ts_ms": BASE + i if ts_ms is None else ts_ms, "latency_ms": 1.0, "shadow": False,
            "error": None, "inputs": {"x": i}, "outputs": [i % 2]}  # fmt: skip


def _log(folder: Path, settings: Settings) -> PredictionLog:
    """A replica's log: its own folder, sealing by hand only."""
    return PredictionLog(folder, interval=3600, shared=shared_log(settings, folder))


def _ids(reader: PredictionReader) -> list[str]:
    return list(reader.requests("d")["request_id"])


def test_the_store_beside_an_object_store_blob_url(tmp_path: Path) -> None:
    def url(**fields: Any) -> str | None:
        fields.setdefault("blob_url", "s3://b/blobs")
        return shared_store_url(Settings(home=tmp_path, database_url="sqlite://", **fields))

    assert url() == "s3://b/predictions"
    assert url(blob_url="s3://b") == "s3://b/predictions"
    assert url(blob_url="s3://b/team/predictions") == "s3://b/team/predictions/predictions"
    assert url(blob_url=str(tmp_path / "blobs")) is None  # a local folder: this host alone
    assert url(prediction_store="local") is None
    assert url(prediction_store="s3://other/log") == "s3://other/log"


def test_replicas_seal_into_one_store_and_every_reader_counts_each_row_once(
    tmp_path: Path, s3_blob_url: tuple[str, dict[str, Any]]
) -> None:
    settings = _settings(tmp_path, s3_blob_url)
    logs = [_log(tmp_path / f"host{n}", settings) for n in range(2)]
    skewed = BASE + 10 * 60_000  # replica 1's clock runs ten minutes ahead
    for i in range(5):
        logs[0].log(_row(0, i))
        logs[1].log(_row(1, i, ts_ms=skewed + i))
    logs[0].flush()
    logs[0].log(_row(0, 5))  # still in host0's journal
    logs[1].flush()
    logs[1].log(_row(1, 5, ts_ms=skewed + 5))
    logs[1].flush()  # a second seal of replica 1

    everyone = {f"r{n}-{i}" for n in range(2) for i in range(6)}
    # host0 sees its live row and both replicas' sealed ones, each once
    assert sorted(_ids(logs[0])) == sorted(everyone)
    assert len(logs[0].predictions("d")) == 12
    # a reader on a third host sees the sealed rows, not host0's journal
    third = PredictionReader(tmp_path / "reader", shared_log(settings, tmp_path / "reader"))
    assert sorted(_ids(third)) == sorted(everyone - {"r0-5"})
    logs[0].close()  # drain: the last row is sealed
    assert sorted(_ids(third)) == sorted(everyone)
    assert third.window("d", 1, 0)["requests"] == 12
    # names: replica id and that replica's own seal number, never a clock
    store = logs[1].shared.store  # type: ignore[union-attr]
    names = sorted(p.rsplit("/", 1)[-1] for p in store.fs.find(f"{store.base}/predictions"))
    replicas = {logs[n].shared.store.replica for n in range(2)}  # type: ignore[union-attr]
    assert names == sorted(
        [f"{r}-{seq:012d}.parquet" for r in replicas for seq in (1, 2)]
    )  # host0: its seal and its drain; host1: two seals
    assert not list((tmp_path / "host0" / "predictions").glob("deployment=*"))  # sealed once
    logs[1].close()


def test_an_unreachable_store_keeps_the_journal_retries_and_warns(
    tmp_path: Path,
    s3_blob_url: tuple[str, dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, options = s3_blob_url
    away = {**options, "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{free_port()}",
                                         "region_name": "us-east-1"},
            "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1}}  # fmt: skip
    host = tmp_path / "host"
    log = _log(host, _settings(tmp_path, (url, away)))
    for i in range(3):
        log.log(_row(0, i))
    with caplog.at_level(logging.WARNING, "opsloop.serving.predlog"):
        for _ in range(3):
            log.flush()
    assert log.seal_health.failing and log.seal_health.failures == 3
    assert "3 seal passes failed in a row, 1 seal(s) kept" in caplog.text
    # and said on /metrics (the kernel registry): failed passes, the oldest unsealed row's age
    assert log.seal_failures_total == log.seal_failing_passes == 3
    assert log.unsealed_age_s() > 0
    scraped = generate_latest(REGISTRY).decode()
    for name in ("seal_failures_total", "seal_failing_passes", "unsealed_age_seconds"):
        assert f"\nopsloop_prediction_{name} " in scraped
    assert sorted(_ids(log)) == ["r0-0", "r0-1", "r0-2"]  # the kept seal is still read
    log._sealer.stop()  # the process ends; its seal stays on disk
    # the next process on this host, with the store back, uploads the kept seal
    settings = _settings(tmp_path, s3_blob_url)
    back = _log(host, settings)
    assert not list(host.glob("*.sealed"))
    assert back.unsealed_age_s() == 0 and back.seal_failing_passes == 0
    reader = PredictionReader(tmp_path / "reader", shared_log(settings, tmp_path / "reader"))
    assert sorted(_ids(reader)) == ["r0-0", "r0-1", "r0-2"]
    back.close()
    # a reader whose store is away answers from the objects it has read before
    blind = PredictionReader(
        reader.folder, shared_log(_settings(tmp_path, (url, away)), reader.folder)
    )
    with caplog.at_level(logging.WARNING, "opsloop.serving.predlog"):
        assert sorted(_ids(blind)) == ["r0-0", "r0-1", "r0-2"]
    assert "unreachable, reading its mirror" in caplog.text


def test_a_stream_keeps_acknowledged_rows_when_a_replica_loses_its_disk(
    tmp_path: Path, s3_blob_url: tuple[str, dict[str, Any]], stream_key: str
) -> None:
    settings = _settings(tmp_path, s3_blob_url, prediction_stream=REDIS_URL,
                         prediction_stream_key=stream_key)  # fmt: skip
    doomed, survivor = _log(tmp_path / "a", settings), _log(tmp_path / "b", settings)
    for i in range(50):
        (doomed if i % 2 else survivor).log(_row(i % 2, i))
    doomed.label("d", "r1-1", 1)
    # a reader sees the stream's rows before any seal, from any host
    reader = PredictionReader(tmp_path / "r", shared_log(settings, tmp_path / "r"))
    assert len(_ids(reader)) == 50
    # replica a takes a page to seal, then dies with its disk before storing it
    assert doomed.shared is not None and doomed.shared.stream is not None
    assert len(doomed.shared.stream.take("predictions")) == 50
    doomed._sealer.stop()
    shutil.rmtree(tmp_path / "a")
    assert len(_ids(reader)) == 50  # the stream still holds them
    # b claims what a left (here at once; by default after 10 s quiet) and seals everything
    assert survivor.shared is not None and survivor.shared.stream is not None
    survivor.shared.stream.claim_idle_ms = 0
    survivor.flush()
    client = redis.Redis.from_url(REDIS_URL)
    assert client.xlen(f"{stream_key}:predictions") == 0  # drained
    assert client.xlen(f"{stream_key}:labels") == 0
    client.close()
    frame = reader.requests("d")
    assert sorted(frame["request_id"]) == sorted(f"r{i % 2}-{i}" for i in range(50))
    assert frame.set_index("request_id")["label"]["r1-1"] == "1"
    survivor.close()


def test_a_seal_stored_twice_is_counted_once(
    tmp_path: Path, s3_blob_url: tuple[str, dict[str, Any]], stream_key: str
) -> None:
    """A sealer killed after storing and before acknowledging: the next stores the same rows
    again, under its own name; readers count them once."""
    settings = _settings(tmp_path, s3_blob_url, prediction_stream=REDIS_URL,
                         prediction_stream_key=stream_key)  # fmt: skip
    shared = shared_log(settings, tmp_path / "a")
    assert isinstance(shared, SharedLog) and shared.stream is not None
    log = PredictionLog(tmp_path / "a", interval=3600, shared=shared)
    for i in range(4):
        log.log(_row(0, i))
    stream = PredictionStream(REDIS_URL, stream_key, "killed", claim_idle_ms=0)
    shared.stream.claim_idle_ms = 0
    taken = stream.take("predictions")
    shared.store.put("predictions", partitions("predictions", [r for _, r in taken]), 99)
    log.flush()  # claims the same entries and stores them again
    assert sorted(_ids(log)) == [f"r0-{i}" for i in range(4)]
    log.close()


def _user_row(replica: int, i: int, user: str, ts_ms: int = BASE) -> dict[str, Any]:
    return {**_row(replica, i, ts_ms + i), "inputs": {"records": [{"user_id": user, "x": i}]}}


def _mirrored(reader: PredictionReader) -> list[Path]:
    return sorted((reader.folder / ".shared").rglob("*.parquet"))


def test_an_erasure_reaches_every_replicas_objects_stream_and_readers_copies(
    tmp_path: Path, s3_blob_url: tuple[str, dict[str, Any]], stream_key: str
) -> None:
    settings = _settings(tmp_path, s3_blob_url, prediction_stream=REDIS_URL,
                         prediction_stream_key=stream_key)  # fmt: skip
    logs = [_log(tmp_path / f"host{n}", settings) for n in range(2)]
    for n, log in enumerate(logs):
        for i in range(4):
            log.log(_user_row(n, i, "alice" if i % 2 else "bob"))
        log.label("d", f"r{n}-1", 1)
        log.flush()  # sealed into the store
    logs[1].log(_user_row(1, 9, "alice"))  # still in the stream
    readers = [
        PredictionReader(tmp_path / name, shared_log(settings, tmp_path / name))
        for name in ("reader", "other")
    ]
    for reader in readers:  # each keeps copies of every sealed object
        assert len(_ids(reader)) == 9 and _mirrored(reader)
    before = {path.name for path in _mirrored(readers[1])}
    shared = shared_log(settings, tmp_path / "eraser")
    assert shared is not None
    found = erase_user(tmp_path / "eraser", "alice", dry_run=True, shared=shared)
    assert found == {"predictions": 5, "labels": 2}
    assert len(_ids(readers[0])) == 9  # a dry run deletes nothing
    assert erase_user(tmp_path / "eraser", "alice", shared=shared) == found
    bob = sorted(f"r{n}-{i}" for n in range(2) for i in (0, 2))
    for reader in [*readers, *logs]:  # what every reader sees, from its own copies
        assert sorted(_ids(reader)) == bob
        assert reader.requests("d")["label"].isna().all()
    for reader in readers:  # no copy of an erased object is left behind
        assert not before & {path.name for path in _mirrored(reader)}
        texts = [str(pq.read_table(p)["inputs"].to_pylist()) for p in _mirrored(reader)]
        assert not any("alice" in text for text in texts)
    store = shared.store
    assert not any(
        "alice" in str(pq.read_table(store.fetch(key))["inputs"].to_pylist())
        for key in store.keys("predictions")
    )
    for log in logs:
        log.close()


def test_retention_deletes_old_objects_and_every_readers_copies(
    tmp_path: Path, s3_blob_url: tuple[str, dict[str, Any]]
) -> None:
    settings = _settings(tmp_path, s3_blob_url)
    day = 86_400_000
    log = _log(tmp_path / "host", settings)
    for i in range(3):  # day 0, day 1 (half of it before the cutoff), day 2
        log.log(_row(0, 2 * i, BASE + i * day))
        log.log(_row(0, 2 * i + 1, BASE + i * day + 1000))
    log.flush()
    reader = PredictionReader(tmp_path / "reader", shared_log(settings, tmp_path / "reader"))
    assert len(_ids(reader)) == 6 and len(_mirrored(reader)) == 3
    cutoff = BASE + day + 500  # keeps r0-3 of day 1, and day 2
    counts = delete_older_than(tmp_path / "sweeper", cutoff, shared=shared_log(settings))
    assert counts == {"predictions": 3, "labels": 0}
    assert sorted(_ids(reader)) == ["r0-3", "r0-4", "r0-5"]
    assert len(_mirrored(reader)) == 2  # day 0's copy gone, day 1's replaced
    assert sorted(_ids(log)) == ["r0-3", "r0-4", "r0-5"]
    log.close()


def test_a_reader_reads_the_stream_incrementally_and_forgets_sealed_rows(
    stream_key: str,
) -> None:
    """The reader keeps what it has read by entry id: sealed entries (a prefix, or a hole
    left by another sealer) drop out, new ones come in, and it keeps nothing the stream lost."""
    writer = PredictionStream(REDIS_URL, stream_key, "w", claim_idle_ms=0)
    reader = PredictionStream(REDIS_URL, stream_key, "r")
    line = '{"request_id": "%s", "deployment": "d"}\n'
    for i in range(6):
        writer.append("predictions", line % f"a{i}")

    def ids() -> list[str]:
        return [row["request_id"] for row in reader.rows("predictions")]

    assert ids() == [f"a{i}" for i in range(6)]
    taken = writer.take("predictions")
    writer.done("predictions", [entry for entry, _ in taken[:2]])  # sealed: the oldest two
    writer.append("predictions", line % "a6")
    assert ids() == [f"a{i}" for i in range(2, 7)]
    writer.delete_rows("predictions", lambda row: row["request_id"] == "a4")  # a hole
    assert ids() == ["a2", "a3", "a5", "a6"]
    assert len(reader._seen["predictions"]) == 4  # nothing kept beyond the stream
    writer.done("predictions", [entry for entry, _ in taken[2:]])
    assert ids() == ["a6"]
    writer.close()
    reader.close()
