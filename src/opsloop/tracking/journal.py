"""The metric journal: a point is in the OS page cache before ``log_metric`` returns.

Why: a buffer in Python memory loses every point logged since its last flush when the process
is killed (SIGKILL, the OOM killer, a preempted node's agent), and flushing per point costs a
syscall or a round trip each. A write into a ``MAP_SHARED`` file mapping costs a memory copy,
yet lands in the page cache, which outlives the process: only a machine crash can lose it.

Each process keeps one segment file per run it logs to (per client), under
``$OPSLOOP_HOME/metrics-journal/<target>/``, where ``<target>`` hashes the database or server
URL the points are bound for. Layout, little-endian, in 32-byte slots after a 256-byte header:

    header   magic "OPSLMJ01", capacity in slots (u64), committed slots (u64), delivered
             slots (u64), run id length (u16) and the run id (UTF-8)
    point    key id (u32), 4 spare bytes, value (f64), step (i64), timestamp (i64)
    key      KEY_FLAG | key id (u32), name length (u32), then the name (UTF-8), running on
             into as many further slots as it needs

A writer fills slots and only then raises ``committed``, so a reader never sees half a point
or a point whose key is not yet named. The flusher raises ``delivered`` once the store has the
points; a crash between the two is harmless because the store keeps one row per (run, key,
step, timestamp, value) and ignores a repeat (``run_data.log_batch``): replay is at least
once, and the store makes it exactly once.

Ownership is in the file name (host, pid, the pid's start time): a later process on the same
host adopts the segments of a dead owner by renaming them to its own name (atomic: one
adopter wins) and delivers what they hold beyond ``delivered``. Segments are fixed in size
(space reserved up front, so a full disk fails at creation, never as a SIGBUS on a write); a
full one is sealed and the run goes on in a new, larger one.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import socket
import struct
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from opsloop.kernel.processes import pid_exists
from opsloop.tracking.entities import MetricBatch
from opsloop.tracking.entities import MetricSeries

if TYPE_CHECKING:  # NumPy only reads points back: a process that lists or logs never needs it
    import numpy as np

__all__ = [
    "COMMITTED", "FIRST_SLOTS", "HEADER", "MAX_SLOTS", "POINT", "SLOT", "U64", "Segment",
    "adopt_orphans", "journal_dir",
]  # fmt: skip

HEADER = 256
SLOT = 32
KEY_FLAG = 0x8000_0000
FIRST_SLOTS = 1 << 16  # 2 MiB: most runs never need a second segment
MAX_SLOTS = 1 << 20  # 32 MiB: each sealed segment doubles the next, up to this
MAX_RUN_ID = HEADER - 34

_MAGIC = b"OPSLMJ01"
COMMITTED, _DELIVERED = 16, 24
_HEAD = struct.Struct("<8sQQQH")
U64 = struct.Struct("<Q")
_KEY = struct.Struct("<II")
POINT = struct.Struct("<I4xdqq")
_SUFFIX = ".mj"


@cache
def _dtype() -> np.dtype:
    """One slot as NumPy reads it back (the layout of :data:`POINT` and key records)."""
    import numpy as np

    return np.dtype([("kid", "<u4"), ("len", "<u4"), ("value", "<f8"), ("step", "<i8"),
                     ("ts", "<i8")])  # fmt: skip


def journal_dir(home: Path, target: str) -> Path:
    """Where segments bound for ``target`` (a database or server URL) live; hashed, so no
    password in a URL is written to disk and two stores never replay into each other."""
    return home / "metrics-journal" / hashlib.sha256(target.encode()).hexdigest()[:16]


class Segment:
    """One run's points in one mapped file (or anonymous memory when the journal is off).

    The writer (``MetricBuffer.add``, under its lock) uses ``mm``, ``n`` and ``keys``; the
    flusher uses ``sent`` and ``names``. ``n`` is the committed slot count.
    """

    __slots__ = ("adopted", "capacity", "keys", "mm", "n", "names", "path", "run_id", "seen",
                 "sent")  # fmt: skip

    def __init__(self, mm: mmap.mmap, path: Path | None, run_id: str, capacity: int) -> None:
        self.mm, self.path, self.run_id, self.capacity = mm, path, run_id, capacity
        self.n = self.sent = 0
        self.seen = -1  # ``n`` at the previous idle check
        self.keys: dict[str, int] = {}
        self.names: dict[int, str] = {}
        self.adopted = False

    @classmethod
    def create(cls, folder: Path | None, run_id: str, capacity: int) -> Segment:
        """A new empty segment, in ``folder`` or (``None``) in anonymous memory.

        Raises:
            OSError: the folder or file cannot be made, or the disk has no room for it.
        """
        size = HEADER + capacity * SLOT
        raw = run_id.encode()
        if folder is None or len(raw) > MAX_RUN_ID:
            mm = mmap.mmap(-1, size)
            path = None
        else:
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{_owner()}.{uuid.uuid4().hex[:12]}"
            tmp, path = folder / f"{name}.tmp", folder / f"{name}{_SUFFIX}"
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                _reserve(fd, size)
                mm = mmap.mmap(fd, size)
            except BaseException:
                os.unlink(tmp)
                raise
            finally:
                os.close(fd)  # the mapping keeps the file
        _HEAD.pack_into(mm, 0, _MAGIC, capacity, 0, 0, len(raw))
        mm[34 : 34 + len(raw)] = raw
        if path is not None:
            os.rename(tmp, path)  # appears whole: an adopter never sees a half-made header
        return cls(mm, path, run_id, capacity)

    def define(self, key: str) -> int:
        """Write a key's name record; the caller commits it with the point that follows.
        Returns the key id, or -1 when the segment has no room for the record and a point."""
        raw = key.encode()
        slots = (len(raw) + 8 + SLOT - 1) // SLOT
        if self.n + slots + 1 > self.capacity:
            return -1
        kid = len(self.keys)
        at = HEADER + self.n * SLOT
        _KEY.pack_into(self.mm, at, KEY_FLAG | kid, len(raw))
        self.mm[at + 8 : at + 8 + len(raw)] = raw
        self.n += slots  # not committed until the point after it is
        self.keys[key] = kid
        return kid

    def batch(self, start: int, end: int) -> MetricBatch:
        """The points in slots ``[start, end)``, columnar per key, in the order logged."""
        import numpy as np

        points = self._points(start, end)
        points = points[np.argsort(points["kid"], kind="stable")]
        cuts = np.flatnonzero(np.diff(points["kid"])) + 1
        series = {}
        for chunk in np.split(points, cuts) if len(points) else []:
            series[self.names[int(chunk["kid"][0])]] = MetricSeries.model_construct(
                values=chunk["value"].tolist(),
                steps=chunk["step"].tolist(),
                timestamps=chunk["ts"].tolist(),
            )
        return MetricBatch(series=series)

    def _points(self, start: int, end: int) -> np.ndarray:
        """The point slots of ``[start, end)``; the key records among them go to ``names``."""
        import numpy as np

        raw = self.mm[HEADER + start * SLOT : HEADER + end * SLOT]
        rows = np.frombuffer(raw, _dtype())
        kids = rows["kid"]
        flagged = np.flatnonzero(kids >= KEY_FLAG).tolist()
        if not flagged:
            return rows
        keep = np.ones(len(rows), dtype=bool)
        after = -1
        for i in flagged:
            if i < after:
                continue  # name bytes of the key record before, which happen to look flagged
            length = int(rows["len"][i])
            self.names[int(kids[i]) & ~KEY_FLAG] = raw[
                i * SLOT + 8 : i * SLOT + 8 + length
            ].decode()
            after = i + (length + 8 + SLOT - 1) // SLOT
            keep[i:after] = False
        return rows[keep]

    def mark_delivered(self, end: int) -> None:
        self.sent = end
        U64.pack_into(self.mm, _DELIVERED, end)

    def remove(self) -> None:
        """Unmap, and delete the file: call only once everything in it is delivered."""
        self.mm.close()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def adopt_orphans(folder: Path) -> Iterator[Segment]:
    """Claim the segments in ``folder`` whose owner process on this host has died, and yield
    each with its committed and delivered counts and key names read back. Unreadable ones are
    deleted (they hold nothing a reader could trust)."""
    if not folder.is_dir():
        return
    me = _owner()
    host = me.split(".", 1)[0]
    for path in sorted(folder.iterdir()):
        parts = path.name.split(".")
        if len(parts) != 5 or parts[0] != host or _alive(parts[1], parts[2]):
            continue
        if path.suffix == ".tmp":  # killed while creating it: nothing was logged into it
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            continue
        mine = folder / f"{me}.{uuid.uuid4().hex[:12]}{_SUFFIX}"
        try:
            os.rename(path, mine)  # atomic: of two adopters, one wins
        except FileNotFoundError:
            continue
        segment = _open(mine)
        if segment is not None:
            yield segment


def _open(path: Path) -> Segment | None:
    try:
        with open(path, "r+b") as fh:
            mm = mmap.mmap(fh.fileno(), 0)
    except (OSError, ValueError):  # empty or unreadable
        path.unlink(missing_ok=True)
        return None
    magic, capacity, committed, delivered, length = _HEAD.unpack_from(mm, 0)
    if (
        magic != _MAGIC
        or len(mm) != HEADER + capacity * SLOT
        or not delivered <= committed <= capacity
    ):
        mm.close()
        path.unlink(missing_ok=True)
        return None
    segment = Segment(mm, path, bytes(mm[34 : 34 + length]).decode(), capacity)
    segment.adopted = True
    segment.n = committed
    segment._points(0, delivered)  # reads back the key names defined before ``delivered``
    segment.sent = delivered
    return segment


def _reserve(fd: int, size: int) -> None:
    """Allocate the file's blocks now: a write into a mapped hole on a full disk is a SIGBUS."""
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, size)
    else:  # macOS: no way to reserve; the file is sparse
        os.ftruncate(fd, size)


_OWNER: tuple[int, str] | None = None


def _owner() -> str:
    """This process's name in file names: host hash, pid, and the pid's start time (so a
    recycled pid is not taken for the dead owner)."""
    global _OWNER
    pid = os.getpid()
    if _OWNER is None or _OWNER[0] != pid:
        host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
        _OWNER = (pid, f"{host}.{pid}.{_start_time(pid) or 0}")
    return _OWNER[1]


def _start_time(pid: int) -> int | None:
    """The pid's start time in clock ticks since boot (Linux), or None when it is not running
    (or is a zombie). 0 where ``/proc`` is missing."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except FileNotFoundError:
        return None if os.path.isdir("/proc/self") else 0
    except OSError:
        return 0
    return None if fields[0] in (b"Z", b"X") else int(fields[19])


def _alive(pid_text: str, start_text: str) -> bool:
    try:
        pid, start = int(pid_text), int(start_text)
    except ValueError:
        return True  # not a name we wrote: leave it alone
    now = _start_time(pid)
    if now is None:
        return False
    if now == 0 or start == 0:  # no /proc: ask the kernel whether the pid exists
        return pid_exists(pid)
    return now == start
