"""Moving version bytes: push/pull to a real S3-compatible server (moto_server) and through
``opsloop server``, verification of every blob, resumable pulls, the hash cache, and disk-full."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opsloop import Client
from opsloop import StoreError
from opsloop.config import load_settings
from opsloop.store.object_blobs import FsspecBlobStore
from tests.conftest import LiveServer

pytestmark = pytest.mark.s3


def _s3_client(home: Path, database: str, s3: tuple[str, dict[str, object]]) -> Client:
    url, options = s3
    settings = load_settings(
        home=str(home), database_url=database, blob_url=url, storage_options=options
    )
    return Client(settings=settings)


def _many_files(root: Path, count: int, size: int = 1024) -> Path:
    for i in range(count):
        sub = root / f"part-{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i}.bin").write_bytes(os.urandom(size))
    return root


def test_push_pull_checkout_through_s3_move_only_what_is_missing(
    tmp_path: Path, sqlite_url: str, s3_blob_url: tuple[str, dict[str, object]]
) -> None:
    data = _many_files(tmp_path / "shards", 120)
    laptop = _s3_client(tmp_path / "laptop", sqlite_url, s3_blob_url)
    version = laptop.data.add(data, "shards").version
    assert len(laptop.data.unpushed(version.ref)) == 120  # status --remote: nothing pushed yet
    pushed = laptop.data.push(version.ref)
    assert laptop.data.unpushed(version.ref) == []
    assert (pushed.files, pushed.bytes, pushed.total_files) == (120, 120 * 1024, 120)
    assert laptop.data.push(version.ref).files == 0  # nothing left to send
    (data / "part-0" / "extra.bin").write_bytes(b"one more")
    laptop.data.add(data, "shards", push=True)

    # A second machine (its own home, so its own empty cache) shares the store and the bucket.
    other = _s3_client(tmp_path / "other", sqlite_url, s3_blob_url)
    assert other.data.pull("shards@1").files == 120
    assert other.data.pull("shards@2").files == 1  # only the blob @1 did not have
    dest = tmp_path / "checkout"
    other.data.checkout("shards@2", dest)
    for path in data.rglob("*.bin"):
        assert (dest / path.relative_to(data)).read_bytes() == path.read_bytes()
    assert other.data.status(dest)[0].clean
    laptop.close()
    other.close()


def test_corrupted_blobs_are_detected_never_returned(
    tmp_path: Path, sqlite_url: str, s3_blob_url: tuple[str, dict[str, object]]
) -> None:
    data = _many_files(tmp_path / "d", 70)
    laptop = _s3_client(tmp_path / "laptop", sqlite_url, s3_blob_url)
    version = laptop.data.add(data, "d", push=True).version
    # Corrupt one blob in the laptop's own cache: checkout refuses and drops it from the cache.
    _, manifest = laptop.data.manifest(version.ref)
    victim = manifest.entries[0]
    blob = laptop.data._cache.path_of(victim.digest)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"bit rot")
    with pytest.raises(StoreError, match="corrupted") as err:
        laptop.data.checkout(version.ref, tmp_path / "out")
    assert victim.digest in str(err.value) and not blob.exists()
    assert not (tmp_path / "out" / victim.path).exists()
    laptop.data.pull(version.ref)  # the good copy comes back from the bucket
    laptop.data.checkout(version.ref, tmp_path / "out2")
    assert (tmp_path / "out2" / victim.path).read_bytes() == (data / victim.path).read_bytes()

    # Corrupt the bucket's copy: a fresh machine's pull refuses it and stores nothing.
    url, options = s3_blob_url
    import fsspec

    fs, base = fsspec.core.url_to_fs(url, **options)
    (pack,) = fs.glob(f"{base}/packs/*.pack")  # 70 small files went up as one pack
    body = bytearray(fs.cat_file(pack))
    where = FsspecBlobStore(url, options)._in_pack(victim.digest, reread_after=0.0)
    assert where is not None
    body[where.offset] ^= 0xFF
    fs.pipe_file(pack, bytes(body))
    other = _s3_client(tmp_path / "other", sqlite_url, s3_blob_url)
    with pytest.raises(StoreError, match="corrupted in the blob store"):
        other.data.pull(version.ref)
    assert not other.data._cache.exists(victim.digest)
    laptop.close()
    other.close()


def test_interrupted_pull_resumes_and_leaves_nothing_half_written(
    tmp_path: Path, sqlite_url: str, s3_blob_url: tuple[str, dict[str, object]]
) -> None:
    data = _many_files(tmp_path / "big", 400, size=32 * 1024)
    laptop = _s3_client(tmp_path / "laptop", sqlite_url, s3_blob_url)
    version = laptop.data.add(data, "big", push=True).version
    laptop.close()
    url, options = s3_blob_url
    home = tmp_path / "other"
    script = (
        "import sys, json; from opsloop import Client; from opsloop.config import load_settings;"
        f"s = load_settings(home={str(home)!r}, database_url={sqlite_url!r}, blob_url={url!r},"
        f" storage_options=json.loads({__import__('json').dumps(options)!r}));"
        f"Client(settings=s).data.pull({version.ref!r})"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    time.sleep(1.5)  # interrupt it part-way (or after it finished: both must end well)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    other = _s3_client(home, sqlite_url, s3_blob_url)
    cache = other.data._cache
    landed = [
        d
        for d in {e.digest for e in other.data.manifest(version.ref)[1].entries}
        if cache.exists(d)
    ]
    for digest in landed:  # whatever landed is complete and correct
        from opsloop.store.blobs import hash_file

        assert hash_file(cache.path_of(digest)) == digest
    resumed = other.data.pull(version.ref)
    assert resumed.files == 400 - len(landed)
    other.data.checkout(version.ref, tmp_path / "out")
    assert other.data.status(tmp_path / "out")[0].clean
    other.close()


def test_pull_through_an_opsloop_server(tmp_path: Path, sqlite_url: str, iris_csv: Path) -> None:
    with LiveServer(sqlite_url, str(tmp_path / "server-blobs")) as server:
        laptop = Client(settings=load_settings(home=str(tmp_path / "a"), server_url=server.url))
        laptop.data.add(iris_csv, "iris", push=True)
        other = Client(settings=load_settings(home=str(tmp_path / "b"), server_url=server.url))
        assert other.data.get("iris@1").to_pandas().shape == (150, 5)
        assert other.data.pull("iris@1").files == 0  # .to_pandas() already pulled it
        laptop.close()
        other.close()


def _watched_client(home: Path, server_url: str, requests: list[str]) -> Client:
    """A client of the server whose requests' paths are appended to ``requests``."""
    client = Client(settings=load_settings(home=str(home), server_url=server_url))
    hooks = client.data._backend.remote.http._client.event_hooks["request"]
    hooks.append(lambda request: requests.append(request.url.path))
    return client


def test_many_small_files_go_through_a_server_in_batches(
    tmp_path: Path, sqlite_url: str, s3_blob_url: tuple[str, dict[str, object]]
) -> None:
    """Push and pull through ``opsloop server`` send small blobs in batched requests, into
    its local folder or, behind it, S3 (where they land as packs)."""
    data = _many_files(tmp_path / "shards", 300)
    url, options = s3_blob_url
    for where, blob_url, storage in (
        ("folder", str(tmp_path / "server-blobs"), None),
        ("s3", url, options),
    ):
        with LiveServer(sqlite_url, blob_url, storage_options=storage) as server:
            requests: list[str] = []
            laptop = _watched_client(tmp_path / where / "a", server.url, requests)
            version = laptop.data.add(data, f"shards-{where}", push=True).version
            assert requests.count("/api/blobs/batch") == 1
            assert not [p for p in requests if p.startswith("/api/blobs/") and len(p) > 70]
            other = _watched_client(tmp_path / where / "b", server.url, requests)
            assert other.data.pull(version.ref).files == 300
            assert requests.count("/api/blobs/batch-download") == 1
            other.data.checkout(version.ref, tmp_path / where / "out")
            for path in data.rglob("*.bin"):
                copy = tmp_path / where / "out" / path.relative_to(data)
                assert copy.read_bytes() == path.read_bytes()
            laptop.close()
            other.close()
    packs = FsspecBlobStore(url, options).fs.glob(f"{url.removeprefix('s3://')}/packs/*.pack")
    assert len(packs) == 1  # behind the server, S3 got the 300 blobs as one pack


def test_bad_batches_are_refused_whole(tmp_path: Path, sqlite_url: str) -> None:
    import httpx
    from blake3 import blake3

    from opsloop.store.packs import frame

    good, bad = b"good bytes", b"bad bytes"
    good_digest = blake3(good).hexdigest()
    with LiveServer(sqlite_url, str(tmp_path / "blobs")) as server:
        api = f"{server.url}/api/blobs"
        lie = frame([(good_digest, good), (blake3(b"other").hexdigest(), bad)])
        answer = httpx.post(f"{api}/batch", content=lie)
        assert answer.status_code == 400 and "does not match its digest" in answer.text
        assert httpx.post(f"{api}/missing", json={"digests": [good_digest]}).json() == {
            "digests": [good_digest]
        }  # the good blob of a refused batch was not stored either
        for body, message in (
            (b"no index line", "no index line"),
            (b'{"format": "zip"}\n', "unknown format"),
            (b'{"format":"opsloop-pack/1","blobs":[["' + good_digest.encode() + b'",0,99]]}\nx',
             "outside the body"),
        ):  # fmt: skip
            answer = httpx.post(f"{api}/batch", content=body)
            assert answer.status_code == 400 and message in answer.text, answer.text
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.putrequest("POST", "/api/blobs/batch")
        conn.putheader("Content-Length", str(1 << 30))  # refused from its headers alone
        conn.endheaders(b"x")
        answer_ = conn.getresponse()
        assert answer_.status == 413 and b"over the" in answer_.read()
        conn.close()
        assert httpx.post(f"{api}/batch", content=frame([(good_digest, good)])).status_code == 201
        missing = blake3(b"never stored").hexdigest()
        answer = httpx.post(f"{api}/batch-download", json={"digests": [good_digest, missing]})
        assert answer.status_code == 404 and missing in answer.text
        answer = httpx.post(f"{api}/batch-download", json={"digests": ["nope"]})
        assert answer.status_code == 400


def test_unchanged_folder_is_not_read_again(tmp_path: Path, folder: Path) -> None:
    """Re-adding and status of an unchanged folder stat files and open none of them."""
    client = Client(settings=load_settings(home=str(tmp_path / "home")))
    client.data.add(folder, "pets")
    opened: list[str] = []
    root = str(folder)

    def audit(event: str, args: tuple[object, ...]) -> None:
        if event == "open" and isinstance(args[0], str) and args[0].startswith(root):
            opened.append(args[0])

    sys.addaudithook(audit)  # audit hooks cannot be removed; this one only records
    assert client.data.add(folder, "pets").hashed_files == 0
    assert client.data.status(folder)[0].clean
    assert opened == []
    (folder / "cats" / "0.txt").write_text("a new cat")
    opened.clear()
    assert client.data.status(folder)[0].modified == ["cats/0.txt"]
    assert opened == [str(folder / "cats" / "0.txt")]
    client.close()


def test_status_recognises_an_unchanged_folder_from_its_snapshot(
    tmp_path: Path, folder: Path
) -> None:
    """A folder whose stats match the snapshot taken when it matched its version is clean
    without its manifest; any change of stats falls back to comparing file by file."""
    client = Client(settings=load_settings(home=str(tmp_path / "home")))
    client.data.add(folder, "pets")
    state = client.data._state
    looked_up: list[str] = []
    cached_digests = state.cached_digests
    state.cached_digests = lambda root: looked_up.append(root) or cached_digests(root)  # type: ignore[method-assign]
    assert client.data.status(folder)[0].clean
    assert looked_up == []  # the snapshot taken by add was enough

    cat = folder / "cats" / "0.txt"
    os.utime(cat, ns=(cat.stat().st_atime_ns, cat.stat().st_mtime_ns + 10**9))  # touched only
    assert client.data.status(folder)[0].clean
    assert looked_up == [str(folder)]  # compared file by file, found clean, snapshot renewed
    assert client.data.status(folder)[0].clean
    assert looked_up == [str(folder)]

    (folder / "cats" / "new.txt").write_text("one more")
    assert client.data.status(folder)[0].added == ["cats/new.txt"]
    (folder / "cats" / "new.txt").unlink()
    cat.write_text("changed")
    assert client.data.status(folder)[0].modified == ["cats/0.txt"]
    client.close()


def _tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill a disk: {done.stderr.decode().strip()}")


def test_disk_full_is_refused_before_writing(tmp_path: Path, folder: Path) -> None:
    client = Client(settings=load_settings(home=str(tmp_path / "home")))
    big = tmp_path / "big"
    big.mkdir()
    (big / "blob.bin").write_bytes(os.urandom(3 << 20))
    (big / "small.txt").write_text("small")
    version = client.data.add(big, "big").version
    small_disk = tmp_path / "small-disk"
    _tmpfs(small_disk, "1m")
    try:
        with pytest.raises(StoreError, match="not enough disk space"):
            client.data.checkout(version.ref, small_disk / "out")
        assert not list(small_disk.rglob("*.bin")) and not list(small_disk.rglob("*part"))
        client.data.checkout(version.ref, tmp_path / "roomy")
    finally:
        subprocess.run(["umount", str(small_disk)], check=False)
    assert (tmp_path / "roomy" / "blob.bin").stat().st_size == 3 << 20
    client.close()
