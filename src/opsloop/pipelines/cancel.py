"""Cancelling a running pipeline: the request is a tag on the pipeline's run, so any process
can make it (the CLI, a server, the web UI), and the runner reads it.

:func:`request_cancel` sets ``opsloop.cancel`` (who asked, when) on a RUNNING pipeline run.
The runner's :class:`Cancellation` reads the tag at most once a second however many threads
ask (a run shorter than that never reads it): the driving loop starts no step once it is
there, and the process and Ray executors poll it while they wait for a step and kill the
step's process or task. A thread cannot be killed, so a local step finishes first. The run
then ends KILLED, and ``resume`` goes on from there.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import OpsloopError

if TYPE_CHECKING:
    from opsloop.pipelines.runs import PipelineRunView

__all__ = ["CANCEL_POLL_S", "CANCEL_TAG", "Cancellation", "request_cancel"]

log = logging.getLogger("opsloop.pipelines")

CANCEL_TAG = "opsloop.cancel"  # set on a running pipeline's run: who asked it to stop, when
CANCEL_POLL_S = 1.0


class Cancellation:
    """Whether the pipeline's run has been asked to stop (see the module docstring)."""

    def __init__(self, client: Any, run_id: str) -> None:
        self._client, self._run_id = client, run_id
        self._next = time.monotonic() + CANCEL_POLL_S
        self._lock = threading.Lock()
        self.by: str | None = None

    def requested(self) -> bool:
        with self._lock:
            if self.by is None and time.monotonic() >= self._next:
                self._next = time.monotonic() + CANCEL_POLL_S
                try:
                    self.by = self._client.get_run(self._run_id).data.tags.get(CANCEL_TAG)
                except OpsloopError as exc:  # the store is down a moment: ask next time
                    log.warning("pipeline run %s: cancellation not read: %s", self._run_id, exc)
            return self.by is not None


def request_cancel(client: Any, run_id: str) -> PipelineRunView:
    """Ask running pipeline run ``run_id`` to stop (its ``opsloop.cancel`` tag: who, when).
    Its runner sees it within about a second: no step starts after that, a step in a process
    or on Ray is killed, one on a thread finishes; the run then ends KILLED.

    Raises:
        NotFound: no such run. InvalidInput: not a pipeline run. Conflict: it has ended.
    """
    from opsloop.errors import Conflict
    from opsloop.errors import InvalidInput
    from opsloop.kernel.identity import current_user
    from opsloop.kernel.timeutil import ms_to_iso
    from opsloop.kernel.timeutil import now_ms
    from opsloop.pipelines.runs import describe

    run = client.get_run(run_id)
    run_id = run.info.run_id  # the full id, where the caller gave a unique prefix
    if "opsloop.pipeline" not in run.data.tags:
        raise InvalidInput(f"run {run_id} is not a pipeline run")
    if run.info.status != "RUNNING":
        raise Conflict(f"pipeline run {run_id} already ended {run.info.status}: nothing to cancel")
    client.set_tag(run_id, CANCEL_TAG, f"{current_user()} at {ms_to_iso(now_ms())}")
    return describe(client, run_id)
