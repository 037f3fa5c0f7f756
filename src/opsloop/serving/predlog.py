"""The prediction log: every answer (and every shadow answer) as a row, queryable with DuckDB,
joinable with ground truth that arrives later by request id.

Writing never waits on Parquet: a row is appended as a JSON line to this process's journal
(written through to the OS before the response goes out, so a killed or restarted server
loses nothing it acknowledged), and a background thread seals journals into Parquet files
partitioned by deployment and day (``predictions/deployment=NAME/date=YYYY-MM-DD/*.parquet``).
Journals a dead process left behind are sealed when the next log opens. Labels (ground truth)
follow the same path under ``labels/``. Queries read the Parquet files and the live journals
together, so a row is visible as soon as it is logged.

Several replicas (hosts) share one log when they are handed a :class:`SharedLog`
(:mod:`.predlog_shared`): each seals into the shared object store's partitions instead of its
own folder, and, with a shared stream, journals to the stream instead of its own file, so an
acknowledged row outlives the replica's disk. Without a stream, a replica that loses its disk
loses the rows of its journal: at most one seal interval (``interval``, 2 s by default).

Reading needs none of the writing side: ``PredictionReader`` (:mod:`.predlog_read`) is the
queries alone (no journal of its own, no sealing thread), what a process that only reads opens
(``opsloop monitors check``); ``PredictionLog`` is a reader that also writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import StoreError
from opsloop.kernel.periodic import Periodic
from opsloop.kernel.processes import pid_exists
from opsloop.serving.predlog_read import PredictionReader
from opsloop.serving.predlog_rows import KINDS
from opsloop.serving.predlog_rows import partitions
from opsloop.serving.predlog_seal import SealHealth

if TYPE_CHECKING:
    from opsloop.governance.masker import IngestMasking
    from opsloop.serving.predlog_shared import SharedLog

__all__ = ["PredictionLog", "PredictionReader"]


class _Journal:
    """One process's append-only JSON-lines file for one kind of row."""

    def __init__(self, folder: Path, kind: str) -> None:
        self.folder, self.kind = folder, kind
        self.lock = threading.Lock()
        self.count = 0
        self.first_ms: int | None = None  # when the current file's first row was logged
        self._open()

    def _open(self) -> None:
        self.path = self.folder / f"{self.kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}.journal"
        self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the log
        self.count, self.first_ms = 0, None

    def append(self, line: str) -> None:
        with self.lock:
            self.file.write(line)
            self.file.flush()  # into the OS: survives the process
            if not self.count:
                self.first_ms = int(time.time() * 1000)
            self.count += 1

    def seal(self) -> tuple[Path, int | None] | None:
        """Close the current file (if it has rows) and start a new one; the sealed path and
        when its first row was logged."""
        with self.lock:
            if self.count == 0:
                return None
            self.file.close()
            sealed, since = self.path.with_suffix(".sealed"), self.first_ms
            os.replace(self.path, sealed)
            self._open()
            return sealed, since


class PredictionLog(PredictionReader):
    """The log under ``folder``, read and written; ``masking`` (the workspace's masking at
    ingest) masks each row's inputs, outputs and error before it is written (None: nothing is
    masked). With ``shared``, seals go to the shared store instead of this folder's Parquet
    files, and rows to the shared stream (if any) instead of this process's journals."""

    def __init__(
        self, folder: Path, *, interval: float = 2.0, masking: IngestMasking | None = None,
        shared: SharedLog | None = None,
    ) -> None:  # fmt: skip
        super().__init__(folder, shared)
        self.interval = interval
        self.masking = masking
        self.seal_health = SealHealth()
        folder.mkdir(parents=True, exist_ok=True)
        self._seal_lock = threading.Lock()
        self._stream_since_ms: int | None = None  # the stream's oldest row after a pass
        self._recover()
        self._journals = {kind: _Journal(folder, kind) for kind in KINDS}
        # Sealing in the background; a disk hiccup (OSError) is retried at the next pass.
        self._sealer = Periodic(self.flush, interval, "opsloop-predlog", retry_on=(OSError,))
        self._sealer.start()
        if shared is not None:  # sealing can fail only towards a shared store
            from opsloop.serving.metrics import watch_seals

            watch_seals(self)

    # -- writing ------------------------------------------------------------------------------
    def log(self, row: dict[str, Any]) -> None:
        """Append one answer; ``inputs``, ``outputs`` and ``proba`` are stored as JSON text.

        ``proba`` (optional) holds a classifier's probabilities per row, as the serving side
        had them: the positive class's for a binary model, the list for more classes. A
        monitor check reads them instead of loading the model (seconds of imports).

        Raises:
            StoreError: The shared stream did not take the row (it is not acknowledged)."""
        masker = self.masking.masker("predictions") if self.masking is not None else None
        if masker is not None:  # never mutates the request body: shadow copies still read it
            for column in ("inputs", "outputs", "error"):
                row[column] = masker.value(row.get(column), column)
        row["inputs"] = json.dumps(row["inputs"], default=str)
        row["outputs"] = json.dumps(row["outputs"], default=str)
        if row.get("proba") is not None:
            row["proba"] = json.dumps(row["proba"])
        self._append("predictions", json.dumps(row, default=str) + "\n")

    def label(self, deployment: str, request_id: str, label: Any) -> None:
        row = {"request_id": request_id, "deployment": deployment,
               "ts_ms": int(time.time() * 1000), "label": json.dumps(label)}  # fmt: skip
        self._append("labels", json.dumps(row) + "\n")

    def _append(self, kind: str, line: str) -> None:
        if self.shared is not None and self.shared.stream is not None:
            self.shared.stream.append(kind, line)
        else:
            self._journals[kind].append(line)

    def flush(self) -> None:
        """Seal now: this process's journals, seals left unfinished (by this process, or by
        a dead one), and, with a shared stream, the stream's rows. What the shared store does
        not take stays for the next pass (``seal_health`` counts such passes and warns)."""
        with self._seal_lock:
            for journal in self._journals.values():
                sealed = journal.seal()
                if sealed is not None:
                    self.seal_health.holding(sealed[1])
            self._seal_pending()

    # -- seal health, as the metrics read it (:func:`opsloop.serving.metrics.watch_seals`) ----
    @property
    def seal_failures_total(self) -> int:
        return self.seal_health.total_failures

    @property
    def seal_failing_passes(self) -> int:
        return self.seal_health.failures

    def unsealed_age_s(self) -> float:
        """Seconds since the oldest row of this process not in the shared store yet was
        logged: in a seal the store refused, in a journal, or (with a stream) in the stream
        as its last seal pass left it; 0 when there is none."""
        held = [self.seal_health.held_since_ms, self._stream_since_ms]
        held += [journal.first_ms for journal in self._journals.values()]
        since = min((ms for ms in held if ms is not None), default=None)
        return 0.0 if since is None else max(0.0, time.time() - since / 1000)

    def close(self) -> None:
        """Stop the background sealing, seal what is left, and remove the empty journals."""
        self._sealer.stop(timeout=5)
        self.flush()
        for journal in self._journals.values():
            with journal.lock:
                journal.file.close()
                if journal.count == 0:
                    journal.path.unlink(missing_ok=True)
        if self.shared is not None and self.shared.stream is not None:
            with contextlib.suppress(StoreError):  # unreachable: the group keeps the consumer
                self.shared.stream.close()

    # -- internals ----------------------------------------------------------------------------
    def _recover(self) -> None:
        """Seal what earlier processes left: journals of dead writers and unfinished seals.
        Several processes may open at once (workers, Ray Serve replicas): what another one
        sealed first is skipped, and a live writer's seal is left to it."""
        for path in self.folder.glob("*-*.journal"):
            pid = int(path.name.split("-")[1])
            if pid != os.getpid() and not pid_exists(pid):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(path, path.with_suffix(".sealed"))
        for sealed in self.folder.glob("*.sealed"):  # held since at most its last write
            with contextlib.suppress(FileNotFoundError):
                self.seal_health.holding(int(sealed.stat().st_mtime * 1000))
        with self._seal_lock:
            self._seal_pending()

    def _seal_pending(self) -> None:
        """Turn the sealed journals of this process and of dead ones into Parquet (here, or
        on the shared store), then drain the shared stream; a shared store that fails ends
        the pass, its rows kept."""
        try:
            for sealed in sorted(self.folder.glob("*.sealed")):
                pid = int(sealed.name.split("-")[1])
                if pid != os.getpid() and pid_exists(pid):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if self.shared is None:
                        self._to_parquet(sealed, sealed.name.split("-")[0])
                    else:
                        self._to_shared(sealed, sealed.name.split("-")[0])
            if self.shared is not None and self.shared.stream is not None:
                for kind in KINDS:
                    self._drain_stream(kind)
                oldest = [self.shared.stream.oldest_ms(kind) for kind in KINDS]
                self._stream_since_ms = min((ms for ms in oldest if ms is not None), default=None)
        except StoreError as exc:
            self.seal_health.failed(exc, len(list(self.folder.glob("*.sealed"))))
        else:
            self.seal_health.passed()

    def _to_parquet(self, sealed: Path, kind: str) -> None:
        import pyarrow.parquet as pq

        for (deployment, day), table in partitions(kind, _sealed_rows(sealed)).items():
            folder = self.folder / kind / f"deployment={deployment}" / f"date={day}"
            folder.mkdir(parents=True, exist_ok=True)
            final = folder / f"part-{sealed.stem}.parquet"  # one name per sealed file: idempotent
            tmp = final.with_suffix(f".{os.getpid()}.tmp")  # a writer's own, if two convert
            pq.write_table(table, tmp)
            os.replace(tmp, final)
        sealed.unlink()

    def _to_shared(self, sealed: Path, kind: str) -> None:
        """Upload a sealed journal as one seal of this replica. Its number is fixed first, in
        the file's name (``...-SEQ.sealed``), so a retry rewrites the same objects."""
        assert self.shared is not None
        parts = sealed.stem.split("-")
        if len(parts) < 4:
            numbered = sealed.with_name(f"{sealed.stem}-{self.shared.store.next_seq()}.sealed")
            os.replace(sealed, numbered)
            sealed, parts = numbered, numbered.stem.split("-")
        self.shared.store.put(kind, partitions(kind, _sealed_rows(sealed)), int(parts[3]))
        sealed.unlink()

    def _drain_stream(self, kind: str, pages: int = 20) -> None:
        """Seal the stream's rows of ``kind`` (up to ``pages`` reads a pass, so a stream
        written faster than it is sealed still lets the pass end)."""
        assert self.shared is not None and self.shared.stream is not None
        stream, store = self.shared.stream, self.shared.store
        for _ in range(pages):
            taken = stream.take(kind)
            if not taken:
                return
            store.put(kind, partitions(kind, [row for _, row in taken]), store.next_seq())
            stream.done(kind, [entry for entry, _ in taken])


def _sealed_rows(sealed: Path) -> list[dict[str, Any]]:
    with open(sealed, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.endswith("\n")]
