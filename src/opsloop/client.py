"""``Client``: one API over two backends, the local store or an opsloop server.

With ``server_url`` set (argument, ``OPSLOOP_SERVER_URL`` or ``opsloop.toml``) every call goes
to the REST API; otherwise the services run in-process on the configured database and blob
store. Each domain contributes its methods as a mixin; the backend choice is made here, once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

from opsloop.config import DEFAULT_WORKSPACE
from opsloop.config import Settings
from opsloop.config import load_settings
from opsloop.tracking.sdk import TrackingClient

if TYPE_CHECKING:
    from opsloop.data.sdk import DataClient
    from opsloop.governance.sdk import GovernanceClient
    from opsloop.lineage.walk import LineageCatalog
    from opsloop.llm.evals.sdk import EvalsClient
    from opsloop.llm.feedback.sdk import FeedbackClient
    from opsloop.llm.prompts.sdk import PromptsClient
    from opsloop.llm.tracing.sdk import TracesClient
    from opsloop.monitoring.measure import Measuring
    from opsloop.monitoring.measure_apart import MeasureApart
    from opsloop.monitoring.ports import PredictionSource
    from opsloop.monitoring.sdk import MonitorsClient
    from opsloop.pipelines.sdk import PipelinesClient
    from opsloop.pipelines.sdk import TriggersClient
    from opsloop.registry.sdk import ModelsClient
    from opsloop.serving.predlog_shared import SharedLog
    from opsloop.serving.sdk import DeploymentsClient
    from opsloop.workflows.scheduler import Scheduler

__all__ = ["Client"]

Q = TypeVar("Q")
_STORES: dict[tuple[str, str], Any] = {}
_STORES_LOCK = threading.Lock()


def _shared_log(settings: Settings) -> SharedLog | None:
    """The prediction log's shared store and stream (every replica's rows), or None."""
    from opsloop.serving.predlog_shared import shared_log

    return shared_log(settings)


def _quick_reads(open_reads: Callable[[str], Q | None], settings: Settings) -> Q | None:
    """A domain's quick reads on the embedded store (``open_reads(database_url)``), or None
    when they cannot serve; then the store is opened now, so a bad URL fails here and a new
    store is created at once."""
    quick = open_reads(settings.database_url)
    if quick is None:
        shared_stores(settings)
    return quick


def shared_stores(settings: Settings) -> tuple[Any, Any]:
    """One engine and blob store per (database, blob) URL per process, shared by clients and
    by a server's app and its serving runtime (so a process holds one connection pool)."""
    from opsloop.schema import open_store
    from opsloop.store.open_blobs import open_blob_store

    key = (settings.database_url, settings.blob_url)
    with _STORES_LOCK:
        if key not in _STORES:
            _STORES[key] = (
                open_store(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous),
                open_blob_store(settings.blob_url, settings.storage_options),
            )
        return _STORES[key]


def _in_workspace(settings: Settings) -> Settings:
    """The settings of the stores ``settings.workspace`` keeps its objects in (the same
    settings for ``default``); ``NotFound`` naming the close ones when no such workspace was
    made in the root store."""
    if settings.workspace == DEFAULT_WORKSPACE:
        return settings
    from opsloop.governance.workspaces import get_workspace
    from opsloop.store.workspaces import workspace_settings

    root, _ = shared_stores(settings)
    with root.read() as session:
        get_workspace(session, settings.workspace)
    return workspace_settings(settings)


def _lineage_catalog() -> LineageCatalog:
    """Every domain's lineage node kinds, gathered when a walk first needs them (the
    gathering imports the store's schema, SQLAlchemy with it)."""
    from opsloop.schema import lineage_catalog

    return lineage_catalog()


def _minilm_embed(texts: list[str]) -> Any:
    """Semantic dedup's embedder (the data floor cannot import llm): all-MiniLM-L6-v2,
    imported when first used, not when ``client.data`` is built."""
    from opsloop.llm.evals.metrics import embed

    return embed(texts)


class Client(TrackingClient):
    """The opsloop SDK client.

    Args:
        server_url: Talk to this opsloop server (REST) instead of the local store.
        token: Bearer token for the server.
        database_url: Local mode: SQLAlchemy URL of the metadata store.
        blob_url: Local mode: folder or fsspec URL of the blob store.
        settings: Fully resolved settings (overrides everything else).

    Example:
        >>> client = Client()                      # embedded: ~/.opsloop/opsloop.db
        >>> exp = client.set_experiment("churn")
        >>> run = client.create_run(exp.experiment_id)
        >>> client.log_metric(run.info.run_id, "auc", 0.91, step=1)
        >>> client.end_run(run.info.run_id)
    """

    def __init__(
        self,
        server_url: str | None = None,
        *,
        token: str | None = None,
        database_url: str | None = None,
        blob_url: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or load_settings(
            server_url=server_url, token=token, database_url=database_url, blob_url=blob_url
        )
        self._root_settings = self.settings  # users, keys, workspaces: the root store's
        if self.settings.is_remote:
            from opsloop.kernel.transport import HttpTransport
            from opsloop.tracking.remote import RemoteTrackingBackend

            self._transport = HttpTransport(
                str(self.settings.server_url), self.settings.token,
                workspace=self.settings.workspace,
            )  # fmt: skip
            self._init_tracking(RemoteTrackingBackend(self._transport), self.settings)
        else:
            from opsloop.tracking.local import LocalTrackingBackend
            from opsloop.tracking.quick_reads import open_quick_reads

            # An embedded store at this schema serves listings without the ORM: the store
            # (SQLAlchemy, 0.3 s to import) is opened when a call first needs it.
            settings = self.settings = _in_workspace(self.settings)
            quick = _quick_reads(open_quick_reads, settings)
            backend = LocalTrackingBackend(lambda: shared_stores(settings), quick)
            self._init_tracking(backend, settings)

    @cached_property
    def data(self) -> DataClient:
        """Dataset versions: ``client.data.add(path, name=...)``, ``client.data.get(ref)``.

        The blob store doubles as the local cache when it is a local folder (the embedded
        default); otherwise blobs are cached under ``$OPSLOOP_HOME/cache/blobs`` and shared
        with ``push`` / ``pull``.
        """
        from opsloop.data.sdk import DataClient
        from opsloop.store.local_blobs import LocalBlobStore

        if self.settings.is_remote:
            from opsloop.data.remote import RemoteDataBackend

            return DataClient(RemoteDataBackend(self._transport), self.settings.home, None)
        from opsloop.data.local import LocalDataBackend

        store, blobs = shared_stores(self.settings)
        cache = blobs if isinstance(blobs, LocalBlobStore) else None
        backend = LocalDataBackend(store, blobs, _lineage_catalog, embedder=_minilm_embed)
        return DataClient(backend, self.settings.home, cache)

    @cached_property
    def models(self) -> ModelsClient:
        """The model registry: ``client.models.register(name, model)``, ``.load(ref)``,
        ``.promote(ref, "champion", policy=...)``, ``.evaluate(...)``."""
        from opsloop.registry.sdk import ModelsClient

        if self.settings.is_remote:
            from opsloop.registry.remote import RemoteRegistryBackend

            return ModelsClient(RemoteRegistryBackend(self._transport), lambda: self.data)
        from opsloop.registry.local import LocalRegistryBackend
        from opsloop.registry.quick_reads import open_quick_reads

        # As for tracking: the registry's everyday reads need no store (nor SQLAlchemy).
        settings = self.settings
        quick = _quick_reads(open_quick_reads, settings)
        backend = LocalRegistryBackend(
            lambda: shared_stores(settings), settings.home, _lineage_catalog, quick
        )
        return ModelsClient(backend, lambda: self.data)

    @cached_property
    def prompts(self) -> PromptsClient:
        """The prompt registry: ``client.prompts.create(name, text=...)``, ``.get(name)``."""
        from opsloop.llm.prompts.sdk import PromptsClient

        if self.settings.is_remote:
            from opsloop.llm.prompts.remote import RemotePromptBackend

            return PromptsClient(RemotePromptBackend(self._transport))
        from opsloop.llm.evals.label_gate import LabelRuleGate
        from opsloop.llm.prompts.local import LocalPromptBackend

        store, _ = shared_stores(self.settings)
        return PromptsClient(LocalPromptBackend(store, LabelRuleGate()))

    @cached_property
    def traces(self) -> TracesClient:
        """LLM traces: ``client.traces.tracer.span(...)``, ``.list(...)``, ``.get(id)``,
        ``.score(trace_id, name, value)``, ``.export(path)``."""
        from opsloop.llm.tracing.sdk import TracesClient

        if self.settings.is_remote:
            from opsloop.llm.tracing.remote import RemoteTracingBackend

            return TracesClient(RemoteTracingBackend(self._transport))
        from opsloop.llm.tracing.local import LocalTracingBackend

        store, _ = shared_stores(self.settings)
        return TracesClient(LocalTracingBackend(store))

    @cached_property
    def feedback(self) -> FeedbackClient:
        """Annotation queues and fine-tuning exports of rated traces."""
        from opsloop.llm.feedback.sdk import FeedbackClient

        if self.settings.is_remote:
            from opsloop.llm.feedback.remote import RemoteFeedbackBackend

            return FeedbackClient(RemoteFeedbackBackend(self._transport))
        from opsloop.llm.feedback.local import LocalFeedbackBackend

        return FeedbackClient(LocalFeedbackBackend(*shared_stores(self.settings)))

    @cached_property
    def evals(self) -> EvalsClient:
        """LLM eval suites: ``client.evals.run("suite.yaml")``, past runs, label rules."""
        from opsloop.llm.evals.backend import EvalBackend
        from opsloop.llm.evals.sdk import EvalsClient

        backend: EvalBackend
        if self.settings.is_remote:
            from opsloop.llm.evals.remote import RemoteEvalBackend

            backend = RemoteEvalBackend(self._transport)
        else:
            from opsloop.llm.evals.local import LocalEvalBackend

            store, _ = shared_stores(self.settings)
            backend = LocalEvalBackend(store)
        from opsloop.registry.causal_lm import RegistryLocalModels

        # what a suite run reads (prompts, data cases, registered models for `model:`
        # providers) and writes (traces): llm/evals/ports.py
        models = RegistryLocalModels(self.models)  # loads nothing until a suite asks a model
        return EvalsClient(backend, self.prompts, self.traces, self.data, models)

    @cached_property
    def deployments(self) -> DeploymentsClient:
        """Deployments: ``client.deployments.deploy("churn@champion")``, canary, A/B, shadow,
        ``promote``, ``rollback``, ``predict``."""
        from opsloop.serving.backend import DeploymentBackend
        from opsloop.serving.sdk import DeploymentsClient

        backend: DeploymentBackend
        if self.settings.is_remote:
            from opsloop.serving.remote import RemoteDeploymentBackend

            backend = RemoteDeploymentBackend(self._transport)
        else:
            from opsloop.serving.local import LocalDeploymentBackend
            from opsloop.serving.quick_reads import DeploymentReads

            # As for tracking: listing and looking up deployments need no store (nor SQLAlchemy).
            settings = self.settings
            quick = _quick_reads(DeploymentReads.open, settings)
            backend = LocalDeploymentBackend(
                lambda: shared_stores(settings)[0],
                self.models,
                settings.predictions_folder,  # this process's prediction log
                quick,
                lambda: _shared_log(settings),  # every replica's, when the settings share one
            )
        return DeploymentsClient(backend, self.models, lambda: self.data, self.settings)

    @cached_property
    def monitors(self) -> MonitorsClient:
        """Monitors on deployments: ``client.monitors.create(name, deployment, reference)``,
        ``.check(name)``, ``.alerts()``, ``.acknowledge(id)``, ``.loop_status()``."""
        from opsloop.monitoring.sdk import MonitorsClient

        if self.settings.is_remote:
            from opsloop.monitoring.remote import RemoteMonitorBackend

            return MonitorsClient(RemoteMonitorBackend(self._transport))
        from opsloop.monitoring.local import LocalMonitorBackend
        from opsloop.monitoring.quick_reads import MonitorReads

        # As for tracking: listing and looking up monitors need no store (nor SQLAlchemy).
        settings = self.settings
        quick = _quick_reads(MonitorReads.open, settings)

        def predictions() -> PredictionSource:
            from opsloop.serving.predlog_shared import prediction_reader

            return prediction_reader(settings)

        def measure_apart(inputs: Measuring, now: int) -> MeasureApart:
            from opsloop.monitoring.measure_apart import started

            child = started()
            child.send(settings, inputs, now)
            return child

        backend = LocalMonitorBackend(
            lambda: shared_stores(settings)[0],
            predictions,
            self,  # models, deployments, data: each built when a call first needs it
            quick,
            measure_apart,
        )
        return MonitorsClient(backend)

    @cached_property
    def triggers(self) -> TriggersClient:
        """Pipeline triggers: ``client.triggers.create(name, "train.py:training", "cron",
        cron="0 2 * * *")``, ``.fire(name, key=...)``, ``.firings(name)``."""
        from opsloop.pipelines.sdk import TriggersClient

        if self.settings.is_remote:
            from opsloop.pipelines.remote import RemoteTriggerBackend

            return TriggersClient(RemoteTriggerBackend(self._transport))
        from opsloop.pipelines.local import LocalTriggerBackend

        store, _ = shared_stores(self.settings)
        # a firing runs its pipeline here, through this whole client: pipelines/local.py
        return TriggersClient(LocalTriggerBackend(store, self))

    @cached_property
    def pipelines(self) -> PipelinesClient:
        """Pipeline runs: ``client.pipelines.run("mypkg.flows:training", params={"C": 0.5})``
        (here, or on the server with a remote client) and ``.get_run(run_id)``, the DAG."""
        from opsloop.pipelines.sdk import PipelinesClient

        if self.settings.is_remote:
            from opsloop.pipelines.remote import RemotePipelineBackend

            return PipelinesClient(RemotePipelineBackend(self._transport))
        from opsloop.pipelines.local import LocalPipelineBackend

        store, _ = shared_stores(self.settings)
        # a pipeline run goes through this whole client (tracking, models, data): local.py
        backend = LocalPipelineBackend(store, self, self.settings.database_url)
        return PipelinesClient(backend)

    @cached_property
    def governance(self) -> GovernanceClient:
        """Users, roles and API keys: ``client.governance.create_key("github", user="ci-bot")``,
        ``.whoami()``. On the embedded store the caller is the database's owner (admin)."""
        from opsloop.governance.sdk import GovernanceClient

        if self.settings.is_remote:
            from opsloop.governance.remote import RemoteGovernanceBackend

            return GovernanceClient(RemoteGovernanceBackend(self._transport))
        from opsloop.governance.local import LocalGovernanceBackend

        root, _ = shared_stores(self._root_settings)
        here, _ = shared_stores(self.settings)  # its audit log, masking, retention
        return GovernanceClient(LocalGovernanceBackend(root, here, self.settings.workspace))

    def scheduler(self, *, interval: float = 1.0) -> Scheduler:
        """The embedded store's scheduler (a server runs its own): ``tick()`` runs the due
        monitor checks, alert deliveries, triggered pipelines and loop runs, and ticks their
        rollouts; ``start()`` does so every ``interval`` seconds on a thread."""
        from opsloop.errors import InvalidInput
        from opsloop.registry.promotion import PromotionContext
        from opsloop.workflows.scheduler import Scheduler

        if self.settings.is_remote:
            raise InvalidInput("the server runs its own scheduler; nothing to run here")
        store, blobs = shared_stores(self.settings)
        promotions = PromotionContext(store, blobs, self.settings.home / "cache")
        predictions = self.deployments.prediction_log
        return Scheduler(self, store, promotions, predictions, interval=interval,
                         tick_rollouts=True)  # fmt: skip

    @property
    def where(self) -> str:
        """Where this client reads and writes, for people: a server URL or the store's URLs."""
        s = self.settings
        return s.server_url or f"{s.database_url} (blobs: {s.blob_url})"

    def close(self) -> None:
        """Flush queued metrics and release connections and local state."""
        try:
            if "traces" in self.__dict__:
                self.traces.close()
            if "deployments" in self.__dict__:
                self.deployments.close()
            if "models" in self.__dict__:
                self.models.close()
            super().close()
        finally:
            if "data" in self.__dict__:
                self.data.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
