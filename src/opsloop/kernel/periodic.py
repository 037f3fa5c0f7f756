"""A daemon thread that calls a function every ``interval`` seconds until it is stopped.

The background loops of a process (the prediction log sealing its journals, the rollout
controller ticking rollouts, a pipeline's step journal writing behind) share one shape: wait
``interval`` seconds, waking at once when stopped; call; carry on past the errors the owner
names (the database away for a moment, a disk hiccup), which the next call retries. It is
written once here; what each loop does and which errors it rides out stay with its owner.

Example::

    sealer = Periodic(log.flush, 2.0, "opsloop-predlog", retry_on=(OSError,)).start()
    ...
    sealer.stop(timeout=5)
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Periodic"]


class Periodic:
    """Calls ``call`` every ``interval`` seconds on a daemon thread named ``name``, from
    :meth:`start` until :meth:`stop`. An exception of a type in ``retry_on`` skips to the
    next call; any other ends the thread (and is reported by ``threading.excepthook``)."""

    def __init__(
        self,
        call: Callable[[], object],
        interval: float,
        name: str,
        *,
        retry_on: tuple[type[Exception], ...] = (),
    ) -> None:
        self.interval = interval
        self._call = call
        self._retry_on = retry_on
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._call()
            except self._retry_on:
                continue

    def stop(self, timeout: float | None = None) -> None:
        """Make no more calls; wait up to ``timeout`` seconds (None: as long as it takes) for
        a call under way to finish. Stopping a loop never started, or twice, is harmless."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
