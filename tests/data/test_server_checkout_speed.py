"""A checkout through ``opsloop server`` on S3 reads packs as a client on S3 does (issue 28).

The server's batch download used to open every blob on its own: one ranged GET per file, so
2,000 small files cost 2,000 requests and 8x the direct path's time. These tests count the
requests S3 (a moto_server of their own, whose request log they read) receives behind the
server, and check the one store call the route makes, ``read_many``, on both stores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from blake3 import blake3

from opsloop import Client
from opsloop.config import load_settings
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.store.local_blobs import LocalBlobStore
from opsloop.store.object_blobs import FsspecBlobStore
from tests.conftest import LiveServer
from tests.conftest import free_port

pytestmark = pytest.mark.s3


class LoggedS3:
    """A moto_server whose request log (one line per request) the test reads."""

    def __init__(self, endpoint: str, log: Path) -> None:
        self.endpoint = endpoint
        self.log = log

    def bucket(self) -> tuple[str, str, dict[str, object]]:
        """A fresh bucket: (its name, blob URL, fsspec storage options)."""
        name = f"speed-{uuid.uuid4().hex[:12]}"
        httpx.put(f"{self.endpoint}/{name}").raise_for_status()
        options = {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }
        return name, f"s3://{name}/blobs", options

    def mark(self) -> int:
        return self.log.stat().st_size

    def reads_since(self, mark: int, bucket: str) -> list[str]:
        """The GET and HEAD requests on ``bucket`` logged after ``mark``."""
        time.sleep(0.2)  # the log line may trail the response by a moment
        with open(self.log, encoding="utf-8", errors="replace") as fh:
            fh.seek(mark)
            lines = fh.read().splitlines()
        return [
            line
            for line in lines
            if f" /{bucket}" in line and ('"GET ' in line or '"HEAD ' in line)
        ]


@pytest.fixture(scope="module")
def logged_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedS3]:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "requests.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("moto_server")),
                "-H",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            stdout=sink,
            stderr=sink,
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(endpoint, timeout=0.5)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.1)
    yield LoggedS3(endpoint, log)
    proc.terminate()
    proc.wait(10)


def _files(root: Path, count: int) -> Path:
    for i in range(count):
        sub = root / f"part-{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i}.bin").write_bytes(os.urandom(700 + i % 600))
    return root


def test_checkout_through_a_server_on_s3_makes_requests_per_pack_not_per_file(
    tmp_path: Path, sqlite_url: str, logged_s3: LoggedS3
) -> None:
    bucket, url, options = logged_s3.bucket()
    data = _files(tmp_path / "shards", 400)
    laptop = Client(
        settings=load_settings(
            home=str(tmp_path / "laptop"),
            database_url=sqlite_url,
            blob_url=url,
            storage_options=options,
        )
    )
    laptop.data.add(data, "shards", push=True)  # 400 small files: one pack
    for i in range(3):  # three more, pushed alone: loose objects next to the pack
        (data / f"late-{i}.bin").write_bytes(os.urandom(900))
    ref = laptop.data.add(data, "shards", push=True).version.ref
    laptop.close()

    mark = logged_s3.mark()
    direct = Client(
        settings=load_settings(
            home=str(tmp_path / "direct"),
            database_url=sqlite_url,
            blob_url=url,
            storage_options=options,
        )
    )
    direct.data.checkout(ref, tmp_path / "direct-out")
    direct.close()
    by_client = logged_s3.reads_since(mark, bucket)

    with LiveServer(sqlite_url, url, storage_options=options) as server:
        mark = logged_s3.mark()
        other = Client(settings=load_settings(home=str(tmp_path / "b"), server_url=server.url))
        other.data.checkout(ref, tmp_path / "out")
        other.close()
        by_server = logged_s3.reads_since(mark, bucket)

    for path in data.rglob("*.bin"):
        assert (tmp_path / "out" / path.relative_to(data)).read_bytes() == path.read_bytes()
    # 403 files: a listing, an index, one coalesced range, and the three loose objects (opened
    # and read): as few as the client reading S3 itself, never one request per file.
    assert len(by_server) <= 10, "\n".join(by_server)
    assert len(by_server) <= len(by_client) + 3, (by_server, by_client)


def test_read_many_returns_what_was_asked_within_the_limit(
    tmp_path: Path, logged_s3: LoggedS3
) -> None:
    _, url, options = logged_s3.bucket()
    packed = [os.urandom(500 + i) for i in range(20)]
    loose = [os.urandom(3000), os.urandom(4000)]
    s3 = FsspecBlobStore(url, options)
    s3.put_verified_bytes([(blake3(b).hexdigest(), b) for b in packed])  # one pack
    for blob in loose:
        s3.put_bytes(blob)  # each its own object
    local = LocalBlobStore(tmp_path / "blobs")
    for blob in packed + loose:
        local.put_bytes(blob)

    wanted = [blake3(b).hexdigest() for b in [loose[1], *packed[::-1], loose[0], packed[0]]]
    expected = [(blake3(b).hexdigest(), b) for b in [loose[1], *packed[::-1], loose[0]]]
    total = sum(len(b) for b in packed + loose)
    for store in (FsspecBlobStore(url, options), local):  # a fresh S3 store reads the indexes
        assert store.read_many(wanted, total) == expected  # in order, repeats dropped
        with pytest.raises(InvalidInput, match=r"over the .* byte limit; ask for fewer"):
            store.read_many(wanted, total - 1)
        with pytest.raises(InvalidInput, match="over the"):  # packed bytes alone are too many
            store.read_many([d for d, _ in expected[1:-1]], 100)
        unknown = blake3(b"never stored").hexdigest()
        with pytest.raises(NotFound, match=unknown):
            store.read_many([wanted[1], unknown], total)
