"""The module-level SDK (``opsloop.start_run``, ``opsloop.log_metric``, ...).

A default :class:`~opsloop.client.Client`, built from settings on first use, and a per-thread
stack of active runs, as in MLflow: ``start_run(nested=True)`` pushes a child of the current
run, leaving the ``with`` block ends it (FAILED when the block raised).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Unpack

from opsloop.errors import InvalidInput
from opsloop.kernel import ambient

if TYPE_CHECKING:
    from opsloop.client import Client
    from opsloop.kernel.paging import Page
    from opsloop.tracking.entities import Artifact
    from opsloop.tracking.entities import Run
    from opsloop.tracking.sdk import RunSearchOptions
    from opsloop.tracking.system_metrics import SystemMetricsSampler

__all__ = [
    "ActiveRun",
    "active_run",
    "end_run",
    "evaluate",
    "flush",
    "get_client",
    "get_run",
    "log_artifact",
    "log_artifacts",
    "log_batch",
    "log_dataframe",
    "log_dict",
    "log_figure",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_output",
    "log_param",
    "log_params",
    "log_text",
    "search_runs",
    "seed_everything",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
]

_client: Client | None = None
_client_lock = threading.Lock()
_experiment_name: str | None = None
_local = threading.local()


def get_client() -> Client:
    """The default client (settings from env / opsloop.toml), created on first use; inside a
    pipeline step, a client of the store the pipeline runs on."""
    global _client
    from opsloop.kernel.step_context import step_settings

    settings = step_settings()
    if settings is not None and (_client is None or _client.settings != settings):
        return _step_client(settings)
    with _client_lock:
        if _client is None:
            from opsloop.client import Client

            _client = Client()
        return _client


def client_settings() -> Any:
    """The settings :func:`get_client`'s client has (or would have), without creating it."""
    from opsloop.kernel.step_context import step_settings

    settings = step_settings()
    if settings is not None:
        return settings
    if _client is not None:
        return _client.settings
    from opsloop.config import load_settings

    return load_settings()


_step_clients: dict[str, Client] = {}


def _step_client(settings: Any) -> Client:
    key = repr(settings)  # a frozen dataclass: its repr names every field
    with _client_lock:
        if key not in _step_clients:
            from opsloop.client import Client

            _step_clients[key] = Client(settings=settings)
        return _step_clients[key]


class _DefaultClients:
    """The clients this module offers the floors below it (see :mod:`opsloop.kernel.ambient`)."""

    def default(self) -> Client:
        return get_client()

    def for_settings(self, settings: Any) -> Client:
        from opsloop.client import Client

        return Client(settings=settings)

    def settings(self) -> Any:
        return client_settings()

    def flush_step_metrics(self, run_id: str, settings: Any) -> None:
        flush_step_metrics(run_id, settings)


ambient.provide(_DefaultClients())


def flush_step_metrics(run_id: str, settings: Any) -> None:
    """Write what a step queued through ``opsloop.get_client()`` for its run, before the
    runner ends that run (the clients' buffers flush on their own only every second). No
    client is created: a step that logged nothing costs nothing here."""
    with _client_lock:
        found = [c for c in (_client, _step_clients.get(repr(settings))) if c is not None]
    for client in found:
        if client.settings == settings:
            client.flush(run_id)


def _reset_default_client() -> None:
    """Forget the default client and active runs (tests, or after changing settings)."""
    global _client, _experiment_name
    with _client_lock:
        _client = None
        _experiment_name = None
        _step_clients.clear()
    _local.stack = []


def _stack() -> list[ActiveRun]:
    stack: list[ActiveRun] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


class ActiveRun:
    """The run ``start_run`` returned; a context manager that ends it on exit."""

    def __init__(self, run: Run, client: Client, sampler: SystemMetricsSampler | None) -> None:
        self.run = run
        self.client = client
        self._sampler = sampler

    @property
    def info(self) -> Any:
        return self.run.info

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        status = "FINISHED"
        if exc_type is not None:
            status = "KILLED" if exc_type is KeyboardInterrupt else "FAILED"
        if self in _stack():
            end_run(status)

    def log_input(self, dataset: Any) -> Any:
        """Record that this run consumed a dataset version (``"iris@2"`` or a handle)."""
        return self.client.data.log_input(self.run_id, _dataset_ref(dataset))

    def log_output(
        self, dataset: Any, *, name: str | None = None, message: str | None = None
    ) -> Any:
        """Record that this run produced a dataset version.

        With ``name``, ``dataset`` is a local path, first added as the next version of ``name``.
        """
        if name is not None:
            dataset = self.client.data.add(dataset, name, message=message).version
        return self.client.data.log_output(self.run_id, _dataset_ref(dataset))

    def __repr__(self) -> str:
        return f"<ActiveRun {self.run.info.run_name} ({self.run_id})>"


def _dataset_ref(dataset: Any) -> str:
    """``"NAME@N"`` for a ref string, a ``DataVersion`` handle or a ``DatasetVersion``."""
    return dataset if isinstance(dataset, str) else str(dataset.ref)


def set_experiment(name: str) -> Any:
    """Make ``name`` the experiment of runs started from now on (created if missing)."""
    global _experiment_name
    experiment = get_client().set_experiment(name)
    _experiment_name = name
    return experiment


def start_run(
    run_name: str | None = None,
    *,
    experiment: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
    log_system_metrics: bool = False,
    system_metrics_interval: float = 10.0,
    capture_env: bool = True,
) -> ActiveRun:
    """Start a run and make it active; use it as a context manager.

    Args:
        run_name: A readable name (a random one otherwise).
        experiment: Experiment name; default ``set_experiment``'s, ``OPSLOOP_EXPERIMENT``, or
            ``Default``.
        nested: Start a child of the active run (required while one is active).
        tags: Tags to set at creation.
        log_system_metrics: Sample CPU, memory (and GPU) into ``system/*`` metrics.
        system_metrics_interval: Seconds between samples.
        capture_env: Record git state, command, packages and host (default on).

    Example:
        >>> with opsloop.start_run(run_name="baseline"):
        ...     opsloop.log_param("lr", 0.01)
        ...     opsloop.log_metric("loss", 0.3, step=1)
    """
    stack = _stack()
    if stack and not nested:
        raise InvalidInput(
            f"run {stack[-1].run_id} is already active; end it first or pass nested=True"
        )
    client = get_client()
    name = experiment or _experiment_name or os.environ.get("OPSLOOP_EXPERIMENT") or "Default"
    exp = client.set_experiment(name)
    parent = stack[-1].run_id if stack else None
    run = client.create_run(
        exp.experiment_id,
        run_name=run_name,
        tags=dict(tags or {}),
        parent_run_id=parent,
        capture_env=capture_env,
    )
    sampler = None
    if log_system_metrics:
        from opsloop.tracking.system_metrics import SystemMetricsSampler

        sampler = SystemMetricsSampler(client, run.info.run_id, interval=system_metrics_interval)
        sampler.start()
    active = ActiveRun(run, client, sampler)
    stack.append(active)
    return active


def active_run() -> ActiveRun | None:
    """The innermost active run of this thread, if any."""
    stack = _stack()
    return stack[-1] if stack else None


def end_run(status: str = "FINISHED") -> None:
    """End the active run: flush its metrics, stop sampling, set its status."""
    stack = _stack()
    if not stack:
        return
    active = stack.pop()
    if active._sampler is not None:
        active._sampler.stop()
    active.client.end_run(active.run_id, status)


def _run_id() -> str:
    active = active_run()
    if active is not None:
        return active.run_id
    return start_run().run_id


def log_param(key: str, value: Any) -> None:
    """Log a param to the active run (one is started if none is)."""
    get_client().log_param(_run_id(), key, value)


def log_params(params: Mapping[str, Any]) -> None:
    get_client().log_params(_run_id(), params)


def set_tag(key: str, value: Any) -> None:
    get_client().set_tag(_run_id(), key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    get_client().set_tags(_run_id(), tags)


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Queue a metric point for the active run: microseconds, written in the background."""
    active = active_run()
    run_id = active.run_id if active is not None else _run_id()
    get_client().log_metric(run_id, key, value, step, timestamp)


def log_metrics(
    metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
) -> None:
    get_client().log_metrics(_run_id(), metrics, step, timestamp)


def log_batch(
    metrics: Any = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> int:
    """Write metrics, params and tags to the active run in one round trip."""
    return get_client().log_batch(_run_id(), metrics, params, tags)


def log_artifact(
    local_path: str | os.PathLike[str], artifact_path: str | None = None
) -> list[Artifact]:
    return get_client().log_artifact(_run_id(), local_path, artifact_path)


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None
) -> list[Artifact]:
    return get_client().log_artifacts(_run_id(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> Artifact:
    return get_client().log_text(_run_id(), text, artifact_file)


def log_dict(data: Any, artifact_file: str) -> Artifact:
    return get_client().log_dict(_run_id(), data, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> Artifact:
    return get_client().log_figure(_run_id(), figure, artifact_file)


def log_dataframe(frame: Any, artifact_file: str) -> Artifact:
    return get_client().log_dataframe(_run_id(), frame, artifact_file)


def flush() -> None:
    """Write every queued metric point now."""
    get_client().flush()


def get_run(run_id: str) -> Run:
    return get_client().get_run(run_id)


def search_runs(
    experiments: str | list[str] | None = None,
    filter: str | None = None,
    **options: Unpack[RunSearchOptions],
) -> Page[Run]:
    """Search runs of the given experiments (default: the current experiment); ``options``
    are :meth:`Client.search_runs`'s: ``order_by``, ``max_results``, ``page_token``, ``view``."""
    names = experiments or _experiment_name or os.environ.get("OPSLOOP_EXPERIMENT") or "Default"
    return get_client().search_runs(names, filter, **options)


def seed_everything(seed: int) -> int:
    """Seed random, NumPy and PyTorch; record the seed on the active run and later runs."""
    from opsloop.tracking.reproducibility import seed_everything as seed_all

    seed_all(seed)
    active = active_run()
    if active is not None:
        active.client.set_tag(active.run_id, "opsloop.seed", seed)
    return seed


def log_input(dataset: Any) -> Any:
    """Record that the active run consumed a dataset version (``"iris@2"`` or a handle).

    Example:
        >>> with opsloop.start_run():
        ...     train = opsloop.data.get("churn@prod")
        ...     opsloop.log_input(train)
    """
    return _active().log_input(dataset)


def log_output(dataset: Any, *, name: str | None = None, message: str | None = None) -> Any:
    """Record that the active run produced a dataset version (see ``ActiveRun.log_output``)."""
    return _active().log_output(dataset, name=name, message=message)


def log_model(
    model: Any,
    artifact_path: str = "model",
    *,
    input_example: Any = None,
    flavor: str | None = None,
    flavor_options: dict[str, Any] | None = None,
    task: str | None = None,
) -> list[Artifact]:
    """Log ``model`` as a package (model file, signature, pinned requirements) on the active run.

    Register it once the run has finished:
    ``opsloop.models.register("churn", run_id=run.info.run_id, artifact_path="model")``.

    Example:
        >>> with opsloop.start_run() as run:
        ...     model = LogisticRegression().fit(X, y)
        ...     opsloop.log_model(model, "model", input_example=X.head())
    """
    import tempfile

    from opsloop.registry.package import write_package

    run_id = _run_id()
    with tempfile.TemporaryDirectory(prefix="opsloop-package-") as tmp:
        folder = Path(tmp) / "package"
        write_package(
            model,
            folder,
            flavor=flavor,
            input_example=input_example,
            task=task,
            flavor_options=flavor_options,
        )
        return get_client().log_artifacts(run_id, folder, artifact_path)


def evaluate(model: Any, data: Any, **options: Any) -> Any:
    """Evaluate a model on data (see ``opsloop.models.evaluate``): metrics, slices, calibration,
    confusion matrix and plots, stored when ``model`` is a registered version (``churn@3``).

    Example:
        >>> result = opsloop.evaluate("churn@3", "churn-data@2", target="churned",
        ...                           slices=["plan"])
        >>> result.metrics["f1"]
    """
    return get_client().models.evaluate(model, data, **options)


def _active() -> ActiveRun:
    """The active run, started if there is none (as every ``log_*`` function does)."""
    return active_run() or start_run()
