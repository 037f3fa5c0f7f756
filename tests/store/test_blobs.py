"""Blob store conformance: the same tests for the local folder and S3 (moto_server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from blake3 import blake3

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.store.blobs import BlobStore
from opsloop.store.blobs import hash_file
from opsloop.store.local_blobs import LocalBlobStore
from opsloop.store.object_blobs import FsspecBlobStore
from opsloop.store.open_blobs import open_blob_store


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return open_blob_store(str(tmp_path / "blobs"))
    url, options = request.getfixturevalue("s3_blob_url")
    return open_blob_store(url, options)


def test_put_bytes_is_content_addressed(blobs: BlobStore) -> None:
    digest = blobs.put_bytes(b"hello")
    assert digest == blake3(b"hello").hexdigest()
    assert blobs.exists(digest)
    assert blobs.read_bytes(digest) == b"hello"
    assert blobs.put_bytes(b"hello") == digest  # idempotent


def test_put_file_and_missing(blobs: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "data.bin"
    src.write_bytes(b"x" * (5 << 20))  # large enough for the mmap hashing path
    digest = blobs.put_file(src)
    assert digest == hash_file(src)
    other = blake3(b"never stored").hexdigest()
    assert blobs.missing([digest, other, other]) == [other]


def test_claimed_digest_must_match(blobs: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_bytes(b"a")
    wrong = blake3(b"b").hexdigest()
    with pytest.raises(InvalidInput, match="does not match"):
        blobs.put_file(src, wrong)
    assert not blobs.exists(wrong)
    with pytest.raises(InvalidInput, match="does not match"):
        blobs.put_stream([b"a"], wrong)
    assert not blobs.exists(wrong)


def test_get_file_is_atomic_and_unknown_is_not_found(blobs: BlobStore, tmp_path: Path) -> None:
    digest = blobs.put_bytes(b"payload")
    dest = tmp_path / "out" / "file.bin"
    blobs.get_file(digest, dest)
    assert dest.read_bytes() == b"payload"
    unknown = blake3(b"nope").hexdigest()
    target = tmp_path / "out" / "missing.bin"
    with pytest.raises(NotFound):
        blobs.get_file(unknown, target)
    assert not target.exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["file.bin"]  # no .part left


def test_malformed_digest_is_invalid_input(blobs: BlobStore) -> None:
    for bad in ("../etc/passwd", "ABC", "g" * 64):
        with pytest.raises(InvalidInput):
            blobs.exists(bad)


def test_open_blob_store_picks_backend(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(str(tmp_path)), LocalBlobStore)
    assert isinstance(open_blob_store(f"file://{tmp_path}"), LocalBlobStore)
    assert isinstance(open_blob_store("memory://bucket/x"), FsspecBlobStore)


def test_a_large_file_is_staged_whole_while_the_disk_writes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``put_copy`` copies in chunks, starting each chunk's writeback as it goes; the blob is
    exactly the source, however the chunks fall."""
    import os

    from opsloop.store import local_blobs as blobs_module

    monkeypatch.setattr(blobs_module, "_WRITEBACK_CHUNK", 1 << 20)
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom((5 << 20) + 123))  # five whole chunks and a ragged end
    store = LocalBlobStore(tmp_path / "blobs")
    with store.batch() as batch:
        digest = batch.put_copy(source)
    assert digest == hash_file(source)
    assert store.path_of(digest).read_bytes() == source.read_bytes()
    assert list((tmp_path / "blobs" / ".tmp").iterdir()) == []  # nothing left staged
