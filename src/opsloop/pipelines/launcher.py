"""Starting pipeline work in the background for the server (``POST /api/pipelines/runs``, a
resume, a reproduction, a tuning): the REST call answers with the new run's id at once, while
the work goes on on the launcher's threads.

It loads pipelines and starts reruns and tunings, so it sits above all of them; the read side
(:mod:`opsloop.pipelines.runs`) stays free of them.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.kernel.code_policy import ANY_CODE
from opsloop.kernel.code_policy import CodePolicy
from opsloop.pipelines.executors import EXECUTORS
from opsloop.pipelines.loading import load_pipeline
from opsloop.pipelines.reruns import reproduce
from opsloop.pipelines.reruns import resume
from opsloop.pipelines.runs import PipelineRunCreate
from opsloop.pipelines.tuning import load_objective
from opsloop.pipelines.tuning import tune

__all__ = ["Launcher"]

log = logging.getLogger("opsloop.pipelines")


class Launcher:
    """Runs pipelines on background threads and answers as soon as the pipeline's run exists,
    so a REST call returns its id at once. Up to ``workers`` run side by side; the scheduler's
    own worker (triggers, retraining) is separate, so ad hoc runs never delay those. ``code``
    is the server's policy on what it imports (a request's target, a run's recorded one)."""

    def __init__(self, client: Any, workers: int = 2, code: CodePolicy = ANY_CODE) -> None:
        self.client = client
        self.code = code
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="opsloop-adhoc")

    def start(self, body: PipelineRunCreate, timeout: float = 60.0) -> str:
        """Check the pipeline and its params here (errors raise before anything starts), run it
        in the background, and return its run id."""
        if body.executor not in EXECUTORS:
            raise InvalidInput(f"executor {body.executor!r}: choose {', '.join(EXECUTORS)}")
        found = load_pipeline(body.pipeline, self.code)
        found.build(**body.params)  # a bad param or graph is the caller's error, now
        return self._launch(
            lambda on_start: found.run(
                client=self.client, experiment=body.experiment, no_cache=body.no_cache,
                tags={"opsloop.trigger": "api", **body.tags}, executor=body.executor,
                on_start=on_start, **body.params,
            ),
            body.pipeline, timeout,
        )  # fmt: skip

    def resume(self, run_id: str, executor: str | None = None, timeout: float = 60.0) -> str:
        """Resume pipeline run ``run_id`` in the background (see ``reruns.resume``); an unknown
        run or one that is no pipeline raises here. Returns the new run's id."""
        return self._launch(
            lambda on_start: resume(self.client, run_id, executor=executor, on_start=on_start,
                                    tags={"opsloop.trigger": "api"}, code=self.code),
            f"resume of {run_id}", timeout,
        )  # fmt: skip

    def reproduce(
        self, run_id: str, executor: str | None = None, clean_env: bool = False,
        timeout: float = 60.0,
    ) -> str:  # fmt: skip
        """Recompute pipeline run ``run_id`` in the background (see ``reruns.reproduce``);
        returns the reproduction's run id, whose comparison ``reruns.compare`` gives once it
        ends. A clean environment is built first, so that answer waits for the build."""
        return self._launch(
            lambda on_start: reproduce(self.client, run_id, executor=executor,
                                       clean_env=clean_env, on_start=on_start,
                                       tags={"opsloop.trigger": "api"}, code=self.code),
            f"reproduction of {run_id}", timeout if not clean_env else max(timeout, 1800),
        )  # fmt: skip

    def tune(self, body: Any, timeout: float = 60.0) -> str:
        """Run a tuning (a ``TuneCreate``) in the background; returns the study's run id.
        A bad objective or space raises here, before the study starts."""
        objective = load_objective(body.objective, self.code)
        return self._launch(
            lambda on_start: tune(objective, body.space, client=self.client, on_start=on_start,
                                  **body.tune_arguments()),
            f"tuning {body.objective}", timeout,
        )  # fmt: skip

    def _launch(self, work: Any, label: str, timeout: float) -> str:
        """Run ``work(on_start)`` on the pool; return the run id it passes to ``on_start``,
        or raise what it raised before getting that far."""
        started: Future[str] = Future()

        def run() -> None:
            try:
                work(started.set_result)
            except Exception as exc:  # its run records the failure; before a run, the caller
                if not started.done():
                    started.set_exception(exc)
                else:
                    log.info("pipeline %s failed: %s", label, exc)

        self._pool.submit(run)
        return started.result(timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
