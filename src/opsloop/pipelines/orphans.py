"""Pipeline runs whose process died: recognised and closed, so none stays RUNNING forever.

A pipeline run records the process that runs it in ``opsloop.launcher``: the host and its pid
namespace, the pid, and the process's start time (pids are reused). While it runs, that
process also writes a heartbeat (``opsloop.heartbeat``, the time in ms) every
:data:`HEARTBEAT_S`. A server or ``opsloop scheduler``, when it starts and then about once a
minute, looks at the pipeline runs still RUNNING. One is an orphan when its process is gone
(killed, out of memory, a server restarted mid-run): on the same host (and pid namespace) that
is seen at once from the process table; a process elsewhere, which cannot be seen from here, is
taken for gone once its heartbeat is older than :data:`STALE_AFTER_S`. An orphan is marked
FAILED with the reason in ``opsloop.error`` and how to go on, together with its steps still
RUNNING and the trigger firing that started it. ``opsloop pipelines resume RUN`` then re-runs
what did not finish. A run of another host without a heartbeat (written by an opsloop before
heartbeats) is left alone. A trigger firing goes with its run; one claimed by a process that
died before its run began is failed (elsewhere: once the claim is that old), and one whose run
ended while the firing still says ``running`` takes the run's outcome.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from opsloop.kernel.timeutil import now_ms

__all__ = [
    "HEARTBEAT_TAG", "LAUNCHER_TAG", "Heartbeat", "close_orphans", "running_in", "this_process",
]  # fmt: skip

LAUNCHER_TAG = "opsloop.launcher"
HEARTBEAT_TAG = "opsloop.heartbeat"  # ms since the epoch, renewed while the run's process lives
ERROR_TAG = "opsloop.error"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0  # ten missed beats: a process elsewhere is taken for gone
_RUNNING_IN = "running in process "  # a running firing's message, then its launcher
_TELL_FIRING_MS = 60_000  # a run ended this long ago whose firing still runs: nobody will tell it

log = logging.getLogger("opsloop.pipelines")


def this_process() -> str:
    """This process as ``host/pid-namespace:pid:start time (ms)``."""
    return f"{_here()}:{os.getpid()}:{_started_ms(os.getpid())}"


def _here() -> str:
    """The host and, where there is one, the pid namespace: two containers may share a host
    name, but a pid means something only inside its own namespace."""
    try:
        namespace = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}/{namespace}" if namespace else socket.gethostname()


def running_in(launcher: str) -> str:
    """The message of a firing a process has claimed: which process runs it."""
    return f"{_RUNNING_IN}{launcher}"


def _host_and_pid(launcher: str) -> tuple[str, str]:
    where, pid, _ = launcher.rsplit(":", 2)
    return where.split("/", 1)[0], pid


def _started_ms(pid: int) -> int | None:
    """When process ``pid`` started (ms since the epoch), None when there is none. On Linux
    read from ``/proc`` as psutil computes it (start ticks / clock rate + boot time): psutil
    costs every pipeline run a 25 ms import for this one number."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            ticks = int(f.read().rpartition(b")")[2].split()[19])  # field 22: starttime
    except FileNotFoundError:
        return None if os.path.isdir("/proc/self") else _started_ms_psutil(pid)
    except OSError:
        return _started_ms_psutil(pid)
    return int((ticks / os.sysconf("SC_CLK_TCK") + _boot_time()) * 1000)


def _boot_time() -> float:
    with open("/proc/stat", "rb") as f:
        for line in f:
            if line.startswith(b"btime"):
                return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def _started_ms_psutil(pid: int) -> int | None:
    import psutil

    try:
        return int(psutil.Process(pid).create_time() * 1000)
    except psutil.NoSuchProcess:
        return None


def _gone(launcher: str) -> bool:
    """Whether the process a launcher tag names has ended (False when it ran elsewhere)."""
    try:
        where, pid, started = launcher.rsplit(":", 2)
        if where != _here():
            return False
        return _started_ms(int(pid)) != int(started)  # None: ended; else another took the pid
    except Exception:  # a tag this code did not write, or no way to look: leave the run be
        return False


def _elsewhere(launcher: str) -> bool:
    """Whether a launcher tag names a process of another host (or pid namespace)."""
    return launcher.count(":") >= 2 and launcher.rsplit(":", 2)[0] != _here()


def _silent_for_s(launcher: str, heartbeat: str | None, now: int) -> float | None:
    """How long a process elsewhere has sent no heartbeat, when that is longer than
    :data:`STALE_AFTER_S`; None while it beats, or when it cannot be judged this way (a
    process on this host, which is looked up instead; a run without heartbeats)."""
    try:
        where = launcher.rsplit(":", 2)[0]
        silent = (now - int(heartbeat or "")) / 1000
    except ValueError:
        return None
    return silent if where != _here() and silent > STALE_AFTER_S else None


class Heartbeat:
    """Renews a running pipeline's heartbeat tag every :data:`HEARTBEAT_S` from a daemon
    thread, until :meth:`stop`; a failed write is logged and tried again next beat."""

    def __init__(self, client: Any, run_id: str) -> None:
        self._client, self._run_id = client, run_id
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="opsloop-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stopped.wait(HEARTBEAT_S):
            try:
                self._client.set_tag(self._run_id, HEARTBEAT_TAG, str(now_ms()))
            except Exception as exc:  # the store is down for a moment: the next beat retries
                log.warning("pipeline run %s: heartbeat not written: %s", self._run_id, exc)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def close_orphans(store: Any) -> list[str]:
    """Mark FAILED the RUNNING pipeline runs (and their running steps and firing) whose
    process has ended: on this host, looked up; elsewhere, silent too long. Their ids."""
    from sqlalchemy import select
    from sqlalchemy import update

    from opsloop.pipelines.tables import FiringRow
    from opsloop.tracking.tables import RunRow
    from opsloop.tracking.tables import RunTagRow

    beats = RunTagRow.__table__.alias("beats")
    with store.read() as session:
        running = session.execute(
            select(RunRow.id, RunTagRow.value, beats.c.value, RunRow.start_time)
            .join(RunTagRow, RunTagRow.run_id == RunRow.id)
            .outerjoin(beats, (beats.c.run_id == RunRow.id) & (beats.c.key == HEARTBEAT_TAG))
            .where(RunRow.status == "RUNNING", RunTagRow.key == LAUNCHER_TAG)
        ).all()
    closed = []
    for run_id, launcher, heartbeat, started in running:
        now = now_ms()
        silent = _silent_for_s(launcher, heartbeat, now)
        if silent is None and not _gone(launcher):
            continue
        host, pid = _host_and_pid(launcher)
        how = (f"sent no heartbeat for {silent / 60:.0f} min" if silent is not None
               else "ended before it finished")  # fmt: skip
        message = (
            f"the process that ran this pipeline (pid {pid} on {host}) {how}; "
            f"`opsloop pipelines resume {run_id}` runs what did not finish"
        )
        with store.write() as session:
            died = _last_sign_of_life(session, run_id, heartbeat, started)
            ended = session.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.status == "RUNNING")
                .values(status="FAILED", end_time=died)
            ).rowcount
            if not ended:
                continue  # another server or scheduler closed it first
            steps = session.scalars(
                select(RunRow.id).where(RunRow.parent_run_id == run_id, RunRow.status == "RUNNING")
            ).all()
            session.execute(
                update(RunRow).where(RunRow.id.in_(steps)).values(status="FAILED", end_time=died)
            )
            for failed in (run_id, *steps):
                session.merge(RunTagRow(run_id=failed, key=ERROR_TAG, value=message))
            firing = session.scalar(
                select(RunTagRow.value).where(
                    RunTagRow.run_id == run_id, RunTagRow.key == "opsloop.firing"
                )
            )
            if firing:
                session.execute(
                    update(FiringRow)
                    .where(FiringRow.id == firing, FiringRow.status == "running")
                    .values(status="failed", message=message, run_id=run_id, updated_at=now)
                )
        log.warning("pipeline run %s: %s", run_id, message)
        closed.append(run_id)
    _close_orphan_firings(store)
    return closed


def _last_sign_of_life(session: Any, run_id: str, heartbeat: str | None, started: int) -> int:
    """When a dead pipeline's process was last seen alive: its heartbeat, or a later start or
    end of one of its steps. Its duration ends there, not when the clean-up noticed (which can
    be minutes or days later)."""
    from sqlalchemy import func
    from sqlalchemy import select

    from opsloop.tracking.tables import RunRow

    steps = session.scalar(
        select(func.max(func.coalesce(RunRow.end_time, RunRow.start_time))).where(
            RunRow.parent_run_id == run_id
        )
    )
    beat = int(heartbeat) if heartbeat and heartbeat.isdigit() else 0
    return max(started or 0, beat, steps or 0)


def _close_orphan_firings(store: Any) -> None:
    """Firings left ``running`` by a process that died: before their pipeline's run began (on
    this host seen at once; elsewhere once the claim is :data:`STALE_AFTER_S` old with no run
    begun), or after the run ended but before the firing was told (it then takes the run's
    outcome). A firing whose run is still RUNNING goes with that run."""
    from sqlalchemy import select
    from sqlalchemy import update

    from opsloop.pipelines.tables import FiringRow
    from opsloop.tracking.tables import RunRow
    from opsloop.tracking.tables import RunTagRow

    with store.read() as session:
        running = session.execute(
            select(FiringRow.id, FiringRow.message, FiringRow.updated_at)
            .where(FiringRow.status == "running")
        ).all()  # fmt: skip
        # firing -> (its run, the run's status, its end time)
        runs = {row[0]: tuple(row[1:]) for row in session.execute(
            select(RunTagRow.value, RunRow.id, RunRow.status, RunRow.end_time)
            .join(RunRow, RunRow.id == RunTagRow.run_id)
            .where(RunTagRow.key == "opsloop.firing",
                   RunTagRow.value.in_([f.id for f in running]))
        )} if running else {}  # fmt: skip
    now = now_ms()
    for firing_id, note, updated_at in running:
        launcher = (note or "").removeprefix(_RUNNING_IN)
        claimed = (note or "").startswith(_RUNNING_IN)
        run_id, run_status, ended = runs.get(firing_id, (None, None, None))
        if run_id is not None:
            if run_status == "RUNNING" or now - (ended or now) < _TELL_FIRING_MS:
                continue  # its process tells the firing (or the run's orphan check does)
            values = {"status": "succeeded" if run_status == "FINISHED" else "failed",
                      "run_id": run_id,
                      "message": f"its run ended {run_status}; the process running it ended "
                                 "before recording that here"}  # fmt: skip
        elif claimed and _gone(launcher):
            host, pid = _host_and_pid(launcher)
            values = {"status": "failed",
                      "message": f"the process that ran it (pid {pid} on {host}) ended before "
                                 "its pipeline started; fire the trigger again"}  # fmt: skip
        elif claimed and now - updated_at > STALE_AFTER_S * 1000 and _elsewhere(launcher):
            host, pid = _host_and_pid(launcher)
            values = {"status": "failed",
                      "message": f"claimed by pid {pid} on {host} "
                                 f"{(now - updated_at) / 60_000:.0f} min ago, and no pipeline "
                                 "run began; fire the trigger again"}  # fmt: skip
        else:
            continue
        with store.write() as session:
            session.execute(
                update(FiringRow)
                .where(FiringRow.id == firing_id, FiringRow.status == "running")
                .values(updated_at=now_ms(), **values)
            )
        log.warning("firing %s: %s", firing_id, values["message"])
