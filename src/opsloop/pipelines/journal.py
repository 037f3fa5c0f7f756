"""Write-behind of a pipeline's step records: what each step run is, its output blobs, its end.

A trivial step used to cost four durable transactions and a synced blob: its run, its
artifacts, its params and metrics, its end (about 5 ms on a small machine, more than the
whole step for most steps). The journal keeps them in order in memory instead and writes
them in one go: every ``interval`` seconds from a background thread, whenever code needs a
step run to exist (a step asking for ``current_step_run_id()`` to log into it, a step sent
to another process), and when the pipeline ends. Each write syncs the output blobs (two
filesystem syncs for all of them), then commits in one transaction: the runs it has not
written yet go in whole, ended if they have ended, with one bulk insert per table
(:mod:`opsloop.tracking.run_records`); changes to runs written earlier follow. A record
never points at a blob that is not there.

A crash loses at most the last ``interval`` of step records (never a blob the database
names); the next run recomputes those steps, as a cache miss. A client that talks to a
server writes through at once, as before: write-behind needs the store in this process.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opsloop.kernel.periodic import Periodic
from opsloop.kernel.timeutil import now_ms

__all__ = ["StepJournal"]


class StepJournal:
    """The step records of one pipeline run, written behind (see the module)."""

    def __init__(self, client: Any, interval: float = 0.5) -> None:
        # imported here: SQLAlchemy stays off the fully cached path
        from opsloop.tracking.local import LocalTrackingBackend

        self.client = client
        backend = client.tracking_backend
        local = isinstance(backend, LocalTrackingBackend)
        self._store = backend.store if local else None
        self._blobs = backend.blobs if local else None
        self.behind = local and hasattr(self._blobs, "batch")
        self._lock = threading.Lock()  # the queues
        self._flushing = threading.Lock()  # one write at a time, in order
        self._new: dict[str, Any] = {}  # run id -> NewRun: runs not written yet, in order
        self._ops: list[Callable[[Any], Any]] = []  # changes to runs written already
        self._batch: Any = self._new_batch()
        self._scratch: Path | None = None
        # Writing behind, every ``interval`` seconds; what fails stays queued (the
        # pipeline's own flush raises it).
        self._writer = Periodic(self.flush, interval, "opsloop-step-journal", retry_on=(Exception,))
        if self.behind:
            self._writer.start()

    def _new_batch(self) -> Any:
        if not self.behind:
            return None
        from opsloop.store.local_blobs import LocalBatch

        return LocalBatch(self._blobs)

    def _queue(self, op: Callable[[Any], Any]) -> None:
        with self._lock:
            self._ops.append(op)

    # -- records ------------------------------------------------------------------------------
    def create_run(
        self, experiment_id: str, *, run_name: str, parent_run_id: str, tags: dict[str, str]
    ) -> str:
        """A RUNNING step run (FINISHED at once with ``finish``); its id."""
        if not self.behind:
            run = self.client.create_run(
                experiment_id, run_name=run_name, tags=tags, parent_run_id=parent_run_id,
                capture_env=False,
            )  # fmt: skip
            return str(run.info.run_id)
        from opsloop.tracking.run_records import NewRun

        run_id = uuid.uuid4().hex
        record = NewRun(run_id, experiment_id, run_name, now_ms(), parent_run_id, tags=tags)
        with self._lock:
            self._new[run_id] = record
        return run_id

    def scratch(self, step: str, fallback: Path) -> tuple[Path, str]:
        """Where to write a step's outputs, and the prefix for their names. Writing behind:
        the blob store's staging area, shared by the steps and named ``<step>.<output>``, so
        the files are renamed into place, never copied, and no folder is made per step.
        Otherwise a fresh ``fallback`` folder and plain names."""
        if self.behind:
            with self._lock:  # steps side by side ask at once: one folder, made before it is seen
                if self._scratch is None:
                    folder = Path(self._blobs._staging_dir()) / f"out-{uuid.uuid4().hex}"
                    folder.mkdir(parents=True)
                    self._scratch = folder
                return self._scratch, f"{step}."
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback, ""

    def blob_path(self, digest: str) -> Path | None:
        """Where a stored blob can be read in place (a local blob store), or None."""
        if not self.behind:
            return None
        path = self._blobs.path_of(digest)
        return path if path.is_file() else None

    def store_outputs(
        self, run_id: str, files: dict[str, Path], folder: Path, prefix: str
    ) -> dict[str, str]:
        """``files`` (name -> a file or folder written under :meth:`scratch`) as the run's
        artifacts under ``prefix``; artifact path -> digest, for every file."""
        if not self.behind:
            stored = self.client.log_artifacts(run_id, folder, prefix)
            return {a.path: a.digest for a in stored}
        import shutil

        from opsloop.store.blobs import hash_file
        from opsloop.tracking import artifacts
        from opsloop.tracking.entities import ArtifactSpec
        from opsloop.tracking.run_artifacts import walk_files

        specs = []
        for name, local in files.items():
            if local.is_dir():  # a model package
                inside = [(f"{name}/{rel}", path) for rel, path in walk_files(local)]
            else:
                inside = [(name, local)]
            for rel, path in inside:  # already in the staging area: renamed once, at commit
                digest, size = hash_file(path), path.stat().st_size
                with self._lock:
                    if local.is_dir():  # its folder goes now: the file moves out first
                        staged = self._batch.stage_path(digest)
                        os.replace(path, staged)
                        path = staged
                    self._batch.staged(digest, path)
                specs.append(ArtifactSpec(path=f"{prefix}/{rel}", digest=digest, size=size))
            if local.is_dir():
                shutil.rmtree(local, ignore_errors=True)
        blobs = self._blobs
        with self._lock:
            record = self._new.get(run_id)
            if record is not None:
                record.artifacts += specs
            else:
                self._ops.append(lambda s: artifacts.register_artifacts(s, blobs, run_id, specs))
        return {spec.path: spec.digest for spec in specs}

    def finish(
        self, run_id: str, status: str, *, params: dict[str, Any] | None = None,
        metrics: list[tuple[str, float, int, int]] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        """The step's last params, metrics and tags, and its end."""
        if not self.behind:
            self.client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
            self.client.end_run(run_id, status)
            return
        from opsloop.tracking import run_data
        from opsloop.tracking import runs
        from opsloop.tracking.sdk import _to_batch

        self.client.flush(run_id)  # what the step logged itself lands before its end
        end = now_ms()
        batch = _to_batch(metrics) if metrics else None
        with self._lock:
            record = self._new.get(run_id)
            if record is not None:  # not written yet: it is written ended
                record.status, record.end_time, record.metrics = status, end, batch
                record.params.update(params or {})
                record.tags.update(tags or {})
                return

        def op(s: Any) -> None:
            if batch or params or tags:
                run_data.log_batch(s, run_id, metrics=batch, params=params, tags=tags)
            runs.update_run(s, run_id, status=status, end_time=end)

        self._queue(op)

    # -- writing ------------------------------------------------------------------------------
    def ensure(self, run_id: str) -> None:
        """Write now if ``run_id`` exists only here (code is about to use it). A write in
        flight may be carrying it: it left ``_new`` when the background writer took the queue,
        but is not committed until that writer lets go of ``_flushing``, so wait for it too
        (checked in this order: the writer empties ``_new`` only while it holds the lock)."""
        if run_id in self._new or self._flushing.locked():
            self.flush()

    def flush(self) -> None:
        """Write everything queued: blobs synced first, then one transaction."""
        if not self.behind:
            return
        from opsloop.store.sql import SessionSql
        from opsloop.tracking.run_records import insert_runs

        with self._flushing:
            with self._lock:
                ops, self._ops = self._ops, []
                new, self._new = self._new, {}
                batch, self._batch = self._batch, self._new_batch()
            try:
                batch.commit()
                if new or ops:
                    with self._store.write() as session:
                        insert_runs(SessionSql(session), self._blobs, list(new.values()))
                        for op in ops:
                            op(session)
            except BaseException:
                with self._lock:  # kept, in order, for the next write
                    self._ops[:0] = ops
                    self._new = {**new, **self._new}
                raise

    def close(self) -> None:
        """Stop the background writer and write what is left."""
        self._writer.stop()
        try:
            self.flush()
        finally:
            if self._scratch is not None:
                import shutil

                shutil.rmtree(self._scratch, ignore_errors=True)
