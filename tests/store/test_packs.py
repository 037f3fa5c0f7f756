"""Packs on a real S3-compatible server (moto_server): many small blobs pushed as one object,
read back by other processes' stores, and never trusted half-written or damaged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from opsloop.errors import NotFound
from opsloop.store.blobs import hash_file
from opsloop.store.object_blobs import FsspecBlobStore
from opsloop.store.packs import PACK_BLOB_MAX
from opsloop.store.packs import PackedBlob
from opsloop.store.packs import coalesce
from opsloop.store.packs import plan_packs

pytestmark = pytest.mark.s3


def _files(root: Path, count: int, size: int = 1024) -> list[tuple[Path, str]]:
    root.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(count):
        path = root / f"{i}.bin"
        path.write_bytes(os.urandom(size))
        items.append((path, hash_file(path)))
    return items


def _store(s3: tuple[str, dict[str, object]]) -> FsspecBlobStore:
    """A new store object: what another process sees, with nothing read yet."""
    url, options = s3
    return FsspecBlobStore(url, options)


def _objects(store: FsspecBlobStore) -> list[str]:
    store.fs.invalidate_cache()
    return sorted(p.removeprefix(store.base + "/") for p in store.fs.find(store.base))


def test_small_blobs_go_up_as_one_pack_and_come_back_verified(
    tmp_path: Path, s3_blob_url: tuple[str, dict[str, object]]
) -> None:
    small = _files(tmp_path / "small", 50)
    big = _files(tmp_path / "big", 1, size=PACK_BLOB_MAX)
    writer = _store(s3_blob_url)
    done: list[int] = []
    writer.put_verified(small + big, done.append)
    assert sum(done) == 51
    objects = _objects(writer)
    packs = [o for o in objects if o.startswith("packs/")]
    assert [p.rsplit(".", 1)[1] for p in packs] == ["idx", "pack"]
    assert f"{big[0][1][:2]}/{big[0][1]}" in objects  # the big blob is its own object
    assert len(objects) == 3

    reader = _store(s3_blob_url)
    digests = [d for _, d in small + big]
    assert reader.missing(digests) == []
    assert reader.exists(small[7][1])
    assert reader.read_bytes(small[7][1]) == small[7][0].read_bytes()
    out = tmp_path / "one.bin"
    reader.get_file(small[3][1], out)
    assert out.read_bytes() == small[3][0].read_bytes()

    wanted = [(d, tmp_path / "out" / f"{i}") for i, (_, d) in enumerate(small + big)]
    (tmp_path / "out").mkdir()
    got: list[int] = []
    _store(s3_blob_url).get_many(wanted, got.append)
    assert sum(got) == 51
    for (digest, dest), (source, _) in zip(wanted, small + big, strict=True):
        assert dest.read_bytes() == source.read_bytes()
        assert hash_file(dest) == digest


def test_a_few_small_blobs_stay_loose(
    tmp_path: Path, s3_blob_url: tuple[str, dict[str, object]]
) -> None:
    items = _files(tmp_path, 3)
    store = _store(s3_blob_url)
    store.put_verified(items)
    assert not [o for o in _objects(store) if o.startswith("packs/")]
    assert _store(s3_blob_url).missing([d for _, d in items]) == []


def test_a_pack_without_its_index_or_with_a_damaged_one_is_not_trusted(
    tmp_path: Path, s3_blob_url: tuple[str, dict[str, object]]
) -> None:
    items = _files(tmp_path, 20)
    store = _store(s3_blob_url)
    store.put_verified(items)
    index = next(o for o in _objects(store) if o.endswith(".idx"))
    key = f"{store.base}/{index}"
    raw = store.fs.cat_file(key)

    store.fs.pipe_file(key, raw.replace(b'"blobs"', b'"Blobs"'))  # no longer its own digest
    assert len(_store(s3_blob_url).missing([d for _, d in items])) == 20
    store.fs.rm_file(key)  # an interrupted push: the pack landed, its index did not
    fresh = _store(s3_blob_url)
    assert len(fresh.missing([d for _, d in items])) == 20
    with pytest.raises(NotFound):
        fresh.read_bytes(items[0][1])
    fresh.put_verified(items)  # pushing again repairs it
    assert _store(s3_blob_url).missing([d for _, d in items]) == []


def test_a_store_sees_packs_that_another_process_pushed_after_it_looked(
    tmp_path: Path, s3_blob_url: tuple[str, dict[str, object]]
) -> None:
    items = _files(tmp_path, 10)
    reader = _store(s3_blob_url)
    assert len(reader.missing([d for _, d in items])) == 10  # lists packs/ (none yet)
    _store(s3_blob_url).put_verified(items)
    assert reader.read_bytes(items[4][1]) == items[4][0].read_bytes()
    assert reader.missing([d for _, d in items]) == []


def test_plan_packs_cuts_packs_by_size_and_keeps_big_blobs_loose(tmp_path: Path) -> None:
    items = _files(tmp_path, 10, size=100)
    loose, groups = plan_packs(items)
    assert loose == [] and groups == [items]
    loose, groups = plan_packs(items[:7])
    assert loose == items[:7] and groups == []


def test_coalesce_merges_neighbouring_reads_only() -> None:
    near = [PackedBlob("p", 0, 10), PackedBlob("p", 10, 10), PackedBlob("p", 25, 5)]
    far = PackedBlob("p", 10 << 20, 4)
    reads = coalesce([(b, Path(str(i))) for i, b in enumerate([far, *near])])
    assert [(start, end, len(members)) for start, end, members in reads] == [
        (0, 30, 3),
        (10 << 20, (10 << 20) + 4, 1),
    ]
