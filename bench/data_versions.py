"""Data versions, opsloop vs DVC, side by side in one process run.

    ./dev bench bench/data_versions.py          # full size: 10,000 files, a 1 GB file
    .venv/bin/python bench/data_versions.py --quick

Every figure is a whole CLI process, as a user runs it (``opsloop data add`` vs ``dvc add``),
each tool in its own fresh folder with its embedded default: opsloop's SQLite + blob folder,
DVC's repository cache, each set up first and untimed (``opsloop db-upgrade``, ``dvc init
--no-scm``). Push and pull go to one moto_server (S3) on
loopback; row 5b checks out the same version through ``opsloop server`` on that bucket, and a
last figure pushes and pulls through ``opsloop server`` on its own folder (ours only).
The floor is what the machine needs at least: BLAKE3 over the bytes plus copying them once.
Every timed command (and the floor) starts after an untimed ``sync``, so no tool pays for
flushing the gigabytes the set-up or the previous tool left in the page cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BIN = Path(sys.executable).parent
RESULTS: list[tuple[str, float, float]] = []


def report(name: str, ours: float, peer: float, note: str = "") -> None:
    RESULTS.append((name, ours, peer))
    print(
        f"{name:<44} opsloop {ours:7.3f}s  dvc {peer:7.3f}s  ratio {peer / ours:6.1f}x  {note}",
        flush=True,
    )


def timed_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    os.sync()  # untimed: the setup's (or the other tool's) writes are not flushed on our clock
    start = time.perf_counter()
    done = subprocess.run(
        args, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):  # status exits 1 when something changed
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr}\n{done.stdout}")
    return elapsed


def make_files(root: Path, count: int, size: int) -> None:
    for i in range(count):
        sub = root / f"d{i % 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i:05d}.bin").write_bytes(os.urandom(size))


def make_big_file(path: Path, size: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    with open(path, "wb") as out:
        left = size
        while left:
            chunk = min(left, 64 << 20)
            out.write(rng.bytes(chunk))
            left -= chunk


def floor(paths: list[Path], dest: Path) -> float:
    """BLAKE3 over every file plus one copy of it: the least any tool can do."""
    from opsloop.store.blobs import hash_file

    dest.mkdir()
    os.sync()
    start = time.perf_counter()
    for i, path in enumerate(paths):
        hash_file(path)
        shutil.copyfile(path, dest / str(i))
    return time.perf_counter() - start


class Workspace:
    """A fresh folder per tool: an opsloop home and a DVC repository."""

    def __init__(self, root: Path) -> None:
        self.ops = root / "ops"
        self.dvc = root / "dvc"
        self.ops.mkdir(parents=True)
        self.dvc.mkdir(parents=True)
        subprocess.run([str(BIN / "dvc"), "init", "--no-scm", "-q"], cwd=self.dvc, check=True)
        self.env = {"OPSLOOP_HOME": str(self.ops / "home")}
        self.opsloop("db-upgrade")  # our `dvc init`: the store exists before anything is timed

    def opsloop(self, *args: str, env: dict[str, str] | None = None) -> float:
        return timed_cli([str(BIN / "opsloop"), *args], self.ops, {**self.env, **(env or {})})

    def dvc_cmd(self, *args: str, env: dict[str, str] | None = None) -> float:
        return timed_cli([str(BIN / "dvc"), *args], self.dvc, env)


def start_listening(
    command: list[str], env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server ``command`` (``{port}`` in it is a free port) and wait until it listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [part.format(port=port) for part in command],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.1)


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    return start_listening([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", "{port}"])


def bench_small_files(root: Path, count: int) -> None:
    ws = Workspace(root / "small")
    for folder in (ws.ops / "data", ws.dvc / "data"):
        make_files(folder, count, 1024)
    files = sorted((ws.ops / "data").rglob("*.bin"))
    base = floor(files, root / "floor-small")
    ours = ws.opsloop("data", "add", "data", "--name", "files")
    peer = ws.dvc_cmd("add", "data")
    report(
        f"1. add {count:,} files of 1 KB", ours, peer, f"(floor {base:.3f}s: {ours / base:.1f}x)"
    )
    ours = min(ws.opsloop("data", "status", "data") for _ in range(3))  # read-only: repeatable
    peer = min(ws.dvc_cmd("status") for _ in range(3))
    report("3. status of the unchanged folder", ours, peer, "(best of 3 each)")


def bench_big_file(root: Path, size: int) -> None:
    ws = Workspace(root / "big")
    make_big_file(ws.ops / "big.bin", size)
    shutil.copyfile(ws.ops / "big.bin", ws.dvc / "big.bin")
    base = floor([ws.ops / "big.bin"], root / "floor-big")
    ours = ws.opsloop("data", "add", "big.bin", "--name", "big")
    peer = ws.dvc_cmd("add", "big.bin")
    gb = size / 1e9
    report(
        f"2. add one {gb:.1f} GB file",
        ours,
        peer,
        f"(floor {base:.3f}s = hash+copy; ours {gb / ours:.2f} GB/s)",
    )


def bench_push(root: Path, count: int) -> None:
    moto, endpoint = start_moto()
    try:
        import httpx

        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        httpx.put(f"{endpoint}/{bucket}").raise_for_status()
        ws = Workspace(root / "push")
        for folder in (ws.ops / "data", ws.dvc / "data"):
            make_files(folder, count, 1024)
        (ws.ops / "opsloop.toml").write_text(
            f'blob_url = "s3://{bucket}/opsloop"\n'
            "[storage_options]\n"
            'key = "testing"\nsecret = "testing"\n'
            "[storage_options.client_kwargs]\n"
            f'endpoint_url = "{endpoint}"\nregion_name = "us-east-1"\n'
        )
        aws = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        ws.opsloop("data", "add", "data", "--name", "files")
        dvc = str(BIN / "dvc")
        subprocess.run([dvc, "add", "-q", "data"], cwd=ws.dvc, check=True)
        subprocess.run(
            [dvc, "remote", "add", "-d", "s3", f"s3://{bucket}/dvc"], cwd=ws.dvc, check=True
        )
        subprocess.run(
            [dvc, "remote", "modify", "s3", "endpointurl", endpoint], cwd=ws.dvc, check=True
        )
        ours = ws.opsloop("data", "push", "files@1", env=aws)
        peer = ws.dvc_cmd("push", env=aws)
        report(f"4. push {count:,} files to S3 (moto_server)", ours, peer)
        # A second machine's view: empty caches, then fetch and write the files.
        shutil.rmtree(ws.ops / "home" / "cache" / "blobs")
        shutil.rmtree(ws.dvc / ".dvc" / "cache")
        shutil.rmtree(ws.dvc / "data")
        ours = ws.opsloop("data", "checkout", "files@1", "copy", env=aws)
        peer = ws.dvc_cmd("pull", env=aws)
        report(f"5. pull + checkout of {count:,} files from S3", ours, peer)
        bench_server_on_s3(ws, count, ours, aws)
    finally:
        moto.terminate()
        moto.wait(10)


def bench_server_on_s3(ws: Workspace, count: int, direct: float, aws: dict[str, str]) -> None:
    """Row 5's checkout again, by a third machine through ``opsloop server`` on the same store
    and bucket: the server should read S3 as the client did (packs, coalesced ranges), so the
    hop costs little (issue 28: it was 8x, one GET per file)."""
    config = {
        **aws,
        "OPSLOOP_HOME": str(ws.ops / "home"),
        "OPSLOOP_CONFIG": str(ws.ops / "opsloop.toml"),
    }
    server, url = start_listening([str(BIN / "opsloop"), "server", "--port", "{port}"], config)
    try:
        home = {"OPSLOOP_SERVER_URL": url, "OPSLOOP_HOME": str(ws.ops / "third")}
        via = timed_cli(
            [str(BIN / "opsloop"), "data", "checkout", "files@1", "copy-via-server"],
            ws.ops,
            {**home, "OPSLOOP_CONFIG": str(ws.ops / "none.toml")},
        )
        print(
            f"5b. checkout of {count:,} files via opsloop server on S3: {via:.3f}s, direct "
            f"(row 5) {direct:.3f}s: {via / direct:.2f}x direct (target <= 1.5x)",
            flush=True,
        )
    finally:
        server.terminate()
        server.wait(10)


def bench_server(root: Path, count: int) -> None:
    """Push and pull through ``opsloop server`` (DVC has no server of its own: ours only)."""
    server, url = start_listening(
        [str(BIN / "opsloop"), "server", "--port", "{port}"],
        {"OPSLOOP_HOME": str(root / "server-home")},
    )
    try:
        folder = root / "via-server"
        make_files(folder / "data", count, 1024)
        env = {"OPSLOOP_SERVER_URL": url}
        run = [str(BIN / "opsloop"), "data"]
        laptop = {**env, "OPSLOOP_HOME": str(folder / "a")}
        timed_cli([*run, "add", "data", "--name", "files"], folder, laptop)
        push = timed_cli([*run, "push", "files@1"], folder, laptop)
        other = {**env, "OPSLOOP_HOME": str(folder / "b")}
        pull = timed_cli([*run, "pull", "files@1"], folder, other)
        print(
            f"6. through opsloop server, {count:,} files:   push {push:.3f}s, pull {pull:.3f}s"
            " (no DVC equivalent)",
            flush=True,
        )
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 files and 100 MB")
    args = parser.parse_args()
    count = 1_000 if args.quick else 10_000
    size = (100 << 20) if args.quick else (1 << 30)
    with tempfile.TemporaryDirectory(prefix="opsloop-bench-data-") as tmp:
        root = Path(tmp)
        bench_small_files(root, count)
        bench_big_file(root, size)
        bench_push(root, count)
        bench_server(root, count)
    print("\nsummary (DVC time / opsloop time):")
    for name, ours, peer in RESULTS:
        print(f"  {name:<44} {peer / ours:6.1f}x")


if __name__ == "__main__":
    main()
