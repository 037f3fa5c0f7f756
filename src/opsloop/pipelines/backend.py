"""The pipelines backend contracts: what ``client.pipelines`` and ``client.triggers`` need,
local or remote.

Two implementations of each: :class:`~opsloop.pipelines.local.LocalPipelineBackend` and
:class:`~opsloop.pipelines.local.LocalTriggerBackend` run the pipelines and the services in this
process (a pipeline run goes through the tracking client they are handed);
:class:`~opsloop.pipelines.remote.RemotePipelineBackend` and
:class:`~opsloop.pipelines.remote.RemoteTriggerBackend` call the REST API, and the server runs
the pipelines on its launcher's threads (triggers' firings on its scheduler). Checking a
request before it is sent (the run's, the tuning's, the trigger's fields) is written once, in
:class:`~opsloop.pipelines.sdk.PipelinesClient` and :class:`~opsloop.pipelines.sdk.TriggersClient`.

Where the work runs is the one difference a caller sees: a local backend runs a pipeline, a
resume, a reproduction or a study here and answers when it has ended; a remote one starts it on
the server and, when asked to wait, polls until it has ended.

Contract: methods are thread-safe; returned entities are immutable snapshots (changing one writes
nothing, and they do not follow later writes: read a run again to see its steps move); errors
are ``OpsloopError`` subclasses, the same class whichever backend raised them (a server that
cannot be reached is a ``StoreError``); every write is durable when the method returns (a run's
records are written by the run as it goes, so a step that finished stays finished whatever
happens to the run after it).
"""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod
from typing import Any

from opsloop.pipelines.reruns import Reproduction
from opsloop.pipelines.runs import PipelineRunCreate
from opsloop.pipelines.runs import PipelineRunSummary
from opsloop.pipelines.runs import PipelineRunView
from opsloop.pipelines.runs import StepLogs
from opsloop.pipelines.triggers import Firing
from opsloop.pipelines.triggers import Trigger
from opsloop.pipelines.triggers import TriggerCreate
from opsloop.pipelines.tuning import TuneCreate
from opsloop.pipelines.tuning import TuneResult

__all__ = ["PipelineBackend", "TriggerBackend"]


class PipelineBackend(ABC):
    """Pipeline runs (start, resume, reproduce, cancel, read) and tuning studies. See the module
    docstring."""

    @property
    @abstractmethod
    def runs_on_server(self) -> bool:
        """Whether the work this backend starts runs on a server (the remote backend) rather
        than in this process. Raises nothing."""

    # -- runs ---------------------------------------------------------------------------------
    @abstractmethod
    def run(self, body: PipelineRunCreate, wait: bool, poll: float) -> PipelineRunView:
        """Run the pipeline ``body`` names with its params and return its DAG. Locally it runs
        here to its end whatever ``wait`` says; on a server it answers once the run exists
        (its steps PENDING), or with ``wait`` once it has ended, asking every ``poll`` seconds.

        Raises ``InvalidInput`` if the pipeline cannot be loaded, its params do not fit or the
        executor is unknown; locally ``PipelineFailed`` (with the run in its details) if a
        step fails or the run is cancelled (on a server the run ends FAILED or KILLED)."""

    @abstractmethod
    def resume(self, run_id: str, executor: str | None, wait: bool, poll: float) -> PipelineRunView:
        """Run pipeline run ``run_id`` again with its params and the data versions it read
        (its finished steps are cache hits), on ``executor`` or the run's; the new run is
        tagged ``opsloop.resumed_from``. Waits as :meth:`run` does.

        Raises ``NotFound`` if there is no run ``run_id``, ``InvalidInput`` if it is not a
        pipeline run recorded with its target; locally ``PipelineFailed`` as :meth:`run`."""

    @abstractmethod
    def reproduce(
        self, run_id: str, executor: str | None, clean_env: bool, poll: float
    ) -> Reproduction:
        """Recompute pipeline run ``run_id`` (no cache, its params and seed, nothing
        registered), in a fresh environment built from its lock and on its code with
        ``clean_env``, and compare the two step by step. Answers once the comparison exists
        (on a server, asking every ``poll`` seconds).

        Raises ``NotFound`` if there is no run ``run_id``, ``InvalidInput`` if it is not a
        pipeline run or recorded too little to be reproduced that way; locally
        ``PipelineFailed`` if the recomputation fails."""

    @abstractmethod
    def get_run(self, run_id: str) -> PipelineRunView:
        """Pipeline run ``run_id``'s DAG: each step with its inputs, column, state, duration
        and cache verdict. Raises ``NotFound`` if there is no run ``run_id``, ``InvalidInput``
        if it is not a pipeline run."""

    @abstractmethod
    def cancel(self, run_id: str) -> PipelineRunView:
        """Ask running pipeline run ``run_id`` to stop (its ``opsloop.cancel`` tag) and return
        its DAG as it stands; it ends KILLED once its runner has seen the request. Raises
        ``NotFound`` if there is no run ``run_id``, ``InvalidInput`` if it is not a pipeline
        run, ``Conflict`` if it has ended."""

    @abstractmethod
    def logs(self, run_id: str, step: str | None) -> list[StepLogs]:
        """What each step of run ``run_id`` printed, warned and logged (``step``'s only when
        given; a cached step's are those of the run that computed it). Raises ``NotFound`` if
        there is no run ``run_id`` or it has no step ``step``, ``InvalidInput`` if it is not a
        pipeline run."""

    @abstractmethod
    def list_runs(self, limit: int, pipeline: str | None) -> list[PipelineRunSummary]:
        """The latest ``limit`` pipeline runs of every experiment, newest first (of the
        pipeline ``pipeline`` when given). Raises ``InvalidInput`` unless
        ``1 <= limit <= 1000``."""

    # -- tuning -------------------------------------------------------------------------------
    @abstractmethod
    def tune(self, body: TuneCreate, poll: float) -> TuneResult:
        """Tune the objective ``body`` names with Optuna (see
        :func:`opsloop.pipelines.tuning.tune`) and return the study's result, once it has
        ended (on a server, asking every ``poll`` seconds).

        Raises ``InvalidInput`` if the objective cannot be loaded, the search space or an
        option is invalid, or no trial completed."""

    @abstractmethod
    def study_storage(self) -> str:
        """The Optuna storage URL of the studies tuned next to this backend's database (see
        :func:`opsloop.pipelines.tuning.optuna_storage`); it may create their schema.

        Raises ``InvalidInput`` on a remote backend (a study runs next to the database: tune
        through :meth:`tune`, which runs it on the server) and for an in-memory or
        unsupported database."""


class TriggerBackend(ABC):
    """Pipeline triggers and their firings. See the module docstring."""

    @abstractmethod
    def create_trigger(self, body: TriggerCreate) -> Trigger:
        """Store the trigger ``body`` describes, created by the current user; a cron trigger
        fires from the next slot on, a dataset trigger on versions newer than the latest.
        Raises ``Conflict`` if a trigger of that name exists."""

    @abstractmethod
    def list_triggers(self) -> list[Trigger]:
        """Every trigger by name. Raises nothing of its own."""

    @abstractmethod
    def get_trigger(self, name: str) -> Trigger:
        """The trigger ``name``. Raises ``NotFound`` if there is none."""

    @abstractmethod
    def delete_trigger(self, name: str) -> None:
        """Delete the trigger ``name`` with its firings. Raises ``NotFound`` if there is
        none."""

    @abstractmethod
    def fire(self, name: str, key: str | None, params: dict[str, Any] | None, run: bool) -> Firing:
        """Fire the trigger ``name`` now with ``params`` over its own. The same ``key`` fires
        once however often it is sent (the earlier firing comes back). Locally the pipeline
        runs here when ``run`` and the firing is still pending, and the firing comes back as
        it ended (a failed run is recorded on the firing, not raised); on a server its
        scheduler runs it and the firing comes back as accepted.

        Raises ``NotFound`` if there is no trigger ``name``, ``InvalidInput`` if ``key`` is
        longer than 250 characters."""

    @abstractmethod
    def list_firings(self, name: str, limit: int) -> list[Firing]:
        """The trigger's latest ``limit`` firings, newest first. Raises ``NotFound`` if there
        is no trigger ``name``."""
