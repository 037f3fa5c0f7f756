"""Sealed prediction-log partitions on an object store every replica shares (S3, MinIO, moto).

Each serving replica seals its rows into the same Parquet partitions it keeps locally
(``{kind}/deployment=D/date=YYYY-MM-DD/``), on the shared store, as objects named by the
replica's own id and its own seal sequence (``{replica}-{seq:012d}.parquet``): two replicas
never write one name, a retried seal rewrites its own object, and nothing depends on a clock
(a replica's clock skewed by minutes changes no name and no order of seals).

Sealed objects never change, so a reader keeps a mirror of the ones it has read under the log's
folder (``.shared/``) and fetches only the new ones: a read costs one listing of the
deployment's prefix. When the store cannot be reached, a reader answers from its mirror (rows
sealed since are missing until the store answers again) and a writer keeps its journals for the
next pass (:class:`SealHealth` counts the failed passes and warns after a limit).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.errors import StoreError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["SealHealth", "SealStore"]

logger = logging.getLogger("opsloop.serving.predlog")


class SealStore:
    """The shared store's partitions under ``url`` (an fsspec URL, ``s3://bucket/prefix``),
    as seen by the log under ``folder`` (its replica id, seal sequence and mirror live there).

    Thread-safe: names are fixed before an upload starts and every local file is written to a
    temporary name first. Errors of the store come out as :class:`StoreError`.
    """

    def __init__(self, url: str, storage_options: dict[str, Any], folder: Path) -> None:
        import fsspec

        try:
            self.fs, self.base = fsspec.core.url_to_fs(url.rstrip("/"), **storage_options)
        except (ImportError, ValueError) as exc:
            raise InvalidInput(f"cannot open the prediction store {url!r}: {exc}") from exc
        self.url = url.rstrip("/")
        self.folder = folder
        self.mirror = folder / ".shared"
        self.replica = _replica_id(folder)

    def next_seq(self) -> int:
        """The next seal number of this replica (every process on its folder counts on one
        file, under a lock: ``opsloop serve --workers N`` shares one replica id)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "seal.seq", "a+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            seq = int(f.read().strip() or 0) + 1
            f.seek(0)
            f.truncate()
            f.write(str(seq))
            f.flush()
            os.fsync(f.fileno())
            return seq

    def put(self, kind: str, tables: dict[tuple[str, str], pa.Table], seq: int) -> None:
        """Upload one seal's partitions (``(deployment, day) -> table``) as seal ``seq``; each
        lands in the mirror too, so this replica never downloads its own rows.

        Raises:
            StoreError: The store did not take an object (the caller keeps the rows).
        """
        for (deployment, day), table in tables.items():
            name = f"{self.replica}-{seq:012d}.parquet"
            self._upload(f"{kind}/deployment={deployment}/date={day}/{name}", table)

    def _upload(self, relative: str, table: pa.Table) -> None:
        """Write ``table`` as the object ``relative`` and into the mirror (a temporary file
        moved into place once the store has it, so the mirror never holds what the store
        refused)."""
        import pyarrow.parquet as pq

        local = self.mirror / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_suffix(f".{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
        pq.write_table(table, tmp)
        try:
            self.fs.put_file(str(tmp), f"{self.base}/{relative}")
        except Exception as exc:  # fsspec backends raise anything from botocore to OSError
            tmp.unlink(missing_ok=True)
            raise StoreError(f"prediction store {self.url}: {_named(exc)}") from exc
        os.replace(tmp, local)

    def files(self, kind: str, deployment: str, first_day: str = "") -> list[Path]:
        """The deployment's sealed files of ``kind`` from ``first_day`` on, every replica's,
        as local paths of the mirror (new objects are fetched first). The store away, the
        mirror as it is (and a warning).

        The mirror follows the listing: a copy whose object is no longer listed (deleted by a
        retention sweep, or replaced by an erasure, which writes under a new name) is removed,
        so the mirror holds no row the store no longer has and grows no larger than the store.
        A copy newer than the listing (this process sealed it meanwhile) is kept."""
        prefix = f"{kind}/deployment={deployment}/"
        started = time.time()
        try:
            listed: list[str] | None = self.keys(kind, deployment)
        except StoreError as exc:  # the store away: answer from what was read before
            logger.warning("prediction store %s unreachable, reading its mirror: %s",
                           self.url, _named(exc.__cause__ or exc))  # fmt: skip
            listed = None
        for relative in listed or ():
            if _day(relative) >= first_day and not (self.mirror / relative).exists():
                with contextlib.suppress(StoreError):  # read next time; the rest counts now
                    self.fetch(relative)
        copies = sorted((self.mirror / prefix).glob("date=*/*.parquet"))
        if listed is not None:
            names = set(listed)
            for path in copies:
                if path.relative_to(self.mirror).as_posix() not in names:
                    with contextlib.suppress(FileNotFoundError):
                        if path.stat().st_mtime < started:
                            path.unlink()
        return [
            path
            for path in copies
            if path.exists() and path.parent.name.removeprefix("date=") >= first_day
        ]

    def keys(self, kind: str, deployment: str = "*") -> list[str]:
        """The names (relative to the store's root) of the sealed objects of ``kind``, of one
        deployment or (``*``) all of them.

        Raises:
            StoreError: The store could not be listed.
        """
        prefix = f"{kind}/" if deployment == "*" else f"{kind}/deployment={deployment}/"
        try:
            self.fs.invalidate_cache(f"{self.base}/{prefix}")
            found = self.fs.find(f"{self.base}/{prefix}")
        except FileNotFoundError:
            return []
        except Exception as exc:  # fsspec backends raise anything from botocore to OSError
            raise StoreError(f"prediction store {self.url}: {_named(exc)}") from exc
        return sorted(k[len(self.base) + 1 :] for k in found if k.endswith(".parquet"))

    def fetch(self, relative: str) -> Path:
        """The mirror's copy of the object ``relative``, downloaded if it has none (an object
        never changes under its name, so a copy is as good as the object).

        Raises:
            StoreError: The object could not be read.
        """
        local = self.mirror / relative
        if local.exists():
            return local
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_suffix(f".{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
        try:
            self.fs.get_file(f"{self.base}/{relative}", str(tmp))
        except Exception as exc:  # fsspec backends raise anything from botocore to OSError
            tmp.unlink(missing_ok=True)
            logger.warning("prediction store %s: %s not read: %s", self.url, relative, _named(exc))
            raise StoreError(f"prediction store {self.url}: {_named(exc)}") from exc
        os.replace(tmp, local)
        return local

    def replace(self, relative: str, table: pa.Table | None) -> None:
        """Replace the object ``relative`` by ``table`` (None or no rows: delete it), for
        retention and erasure. The rows left go under a new name (``<seal>.<nonce>.parquet``)
        before the old object is deleted: a reader's listing then sees the old name gone and
        drops its copy, whereas an object rewritten in place would look unchanged to it. A
        reader listing in between sees both, and counts each row once (``DISTINCT``).

        Raises:
            StoreError: The store did not take the change (the old object may still be there:
                run the sweep or erasure again).
        """
        old = self.mirror / relative
        try:
            if table is not None and table.num_rows:
                seal = relative.rsplit("/", 1)[1].split(".", 1)[0]
                renamed = f"{relative.rsplit('/', 1)[0]}/{seal}.{uuid.uuid4().hex[:8]}.parquet"
                self._upload(renamed, table)
            self.fs.rm(f"{self.base}/{relative}")
        except StoreError:
            raise
        except Exception as exc:  # fsspec backends raise anything from botocore to OSError
            raise StoreError(f"prediction store {self.url}: {_named(exc)}") from exc
        old.unlink(missing_ok=True)


class SealHealth:
    """How sealing to the shared store goes: consecutive failed passes, and a warning once
    they reach ``alert_after`` (again at every further ``alert_after``), so a store away for
    a moment is silent and one away for good is said, not only retried."""

    def __init__(self, alert_after: int = 3) -> None:
        self.alert_after = alert_after
        self.failures = 0
        self.total_failures = 0  # since the log opened: the metric's counter
        self.last_error: str | None = None
        # When the oldest row handed to sealing and not stored yet was logged (ms), or None
        self.held_since_ms: int | None = None

    @property
    def failing(self) -> bool:
        """True once the failed passes have reached the limit (and none has passed since)."""
        return self.failures >= self.alert_after

    def holding(self, since_ms: int | None) -> None:
        """Rows logged from ``since_ms`` on are handed to sealing (kept until a pass passes)."""
        if since_ms is not None:
            self.held_since_ms = min(self.held_since_ms or since_ms, since_ms)

    def failed(self, exc: BaseException, backlog: int) -> None:
        self.failures += 1
        self.total_failures += 1
        self.last_error = _named(exc)
        if self.failures % self.alert_after == 0:
            logger.warning(
                "prediction log: %d seal passes failed in a row, %d seal(s) kept for the next "
                "pass: %s", self.failures, backlog, self.last_error,
            )  # fmt: skip

    def passed(self) -> None:
        if self.failing:
            logger.warning("prediction log: sealing to the shared store works again")
        self.failures, self.last_error, self.held_since_ms = 0, None, None


def _replica_id(folder: Path) -> str:
    """This log folder's replica id, made once (``replica.id``): a restarted replica keeps
    its name, a new home gets a new one."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "replica.id"
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(uuid.uuid4().hex[:12])
    for _ in range(100):  # another process may be between creating and writing it
        name = path.read_text(encoding="utf-8").strip()
        if name:
            return name
        os.sched_yield()
    raise StoreError(f"{path} is empty: remove it and restart")


def _day(relative: str) -> str:
    return relative.split("/date=", 1)[1].split("/", 1)[0]


def _named(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
