"""``@step`` and ``@pipeline``: a pipeline is a plain function whose step calls build a graph.

Inside a pipeline function a step call does not run the step: it records a node and returns a
:class:`~opsloop.pipelines.graph.StepOutput` that later steps take as an argument, which is what
makes the edges. The graph is checked as it is built (:mod:`opsloop.pipelines.graph`): a param
(a plain argument) must be JSON-able and match its annotation, and an upstream output must match
the annotation of the argument it feeds. Outside a pipeline, a step is its plain function, so it
stays unit-testable.

Example::

    @step
    def load(rows: int = 500) -> pd.DataFrame: ...

    @step(cache=False)
    def train(data: pd.DataFrame, C: float = 1.0) -> LogisticRegression: ...

    @pipeline
    def training(C: float = 1.0) -> None:
        train(load(), C=C)

    training.run(C=0.5)

A step with several outputs names them, and its call unpacks like the tuple it returns::

    @step(outputs=("train", "test"))
    def split(data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]: ...

    train, test = split(load())

A step that trains a model can store it as a model package and register it::

    @step(register="churn")  # the next version of "churn", linked to the step's run
    def train(data: pd.DataFrame) -> LogisticRegression: ...
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable
from typing import Any
from typing import get_args
from typing import get_origin
from typing import get_type_hints

from opsloop.errors import InvalidInput
from opsloop.kernel import ambient
from opsloop.pipelines.graph import Graph
from opsloop.pipelines.graph import building
from opsloop.pipelines.graph import graph_being_built

__all__ = ["Pipeline", "Step", "pipeline", "step"]


def _data_args(hints: dict[str, Any]) -> frozenset[str]:
    """The arguments annotated ``DataVersion``. The data SDK is loaded wherever such an
    annotation was resolved, so it is looked up, never imported, here."""
    sdk = sys.modules.get("opsloop.data.sdk")
    if sdk is None:
        return frozenset()
    return frozenset(a for a, h in hints.items() if h is sdk.DataVersion and a != "return")


class Step:
    """A function that a pipeline runs as a tracked, cached step."""

    def __init__(
        self, fn: Any, *, name: str | None = None, cache: bool = True, retries: int = 0,
        retry_delay: float = 1.0, timeout: float | None = None,
        resources: dict[str, Any] | None = None, outputs: tuple[str, ...] | list[str] | None = None,
        register: str | None = None,
    ) -> None:  # fmt: skip
        from opsloop.pipelines.executors import parse_resources

        self.outputs = _check_outputs(fn, outputs)
        if register is not None:
            from opsloop.kernel.refs import check_name

            check_name(register, "model")
            if self.outputs is not None:
                raise InvalidInput("register= stores a step's one output as a model: drop outputs=")
        self.register = register
        if retries < 0:
            raise InvalidInput("retries must be 0 or more")
        if timeout is not None and timeout <= 0:
            raise InvalidInput("timeout must be a positive number of seconds")
        self.timeout = timeout
        self.resources = parse_resources(resources)
        self.fn = fn
        self.name = name or fn.__name__
        self.cache = cache
        self.retries = retries
        self.retry_delay = retry_delay
        self.signature = inspect.signature(fn)
        try:
            self.hints = get_type_hints(fn)
        except (NameError, TypeError):
            self.hints = {}
        self.output_types = _output_types(self.hints.get("return"), self.outputs)
        self.data_args = _data_args(self.hints)
        functools.update_wrapper(self, fn)

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.outputs or ("output",)

    def split_outputs(self, value: Any) -> dict[str, Any]:
        """The step's return value by output name; a multi-output step returns a tuple (or a
        list) of as many values as it names, or a dict with exactly those keys."""
        if self.outputs is None:
            return {"output": value}
        if isinstance(value, dict) and set(value) == set(self.outputs):
            return {name: value[name] for name in self.outputs}
        if isinstance(value, tuple | list) and len(value) == len(self.outputs):
            return dict(zip(self.outputs, value, strict=True))
        raise InvalidInput(
            f"step {self.name!r} declares outputs {', '.join(self.outputs)} but returned "
            f"{_describe(value)}: return a tuple of {len(self.outputs)} values or a dict with "
            "those keys"
        )

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        """Pickled by reference (module and name), for the process and Ray executors."""
        return _load_step, (self.fn.__module__, self.fn.__qualname__)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        graph = graph_being_built()
        if graph is None:
            return self.fn(*args, **kwargs)
        return graph.add(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<step {self.name}>"


def _describe(value: Any) -> str:
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"


def _check_outputs(fn: Any, outputs: tuple[str, ...] | list[str] | None) -> tuple[str, ...] | None:
    if outputs is None:
        return None
    if isinstance(outputs, str) or not outputs:
        raise InvalidInput(f"step {fn.__name__!r}: outputs= takes a tuple of names")
    names = tuple(outputs)
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise InvalidInput(f"step {fn.__name__!r}: output name {name!r} is not an identifier")
    if len(set(names)) != len(names):
        raise InvalidInput(f"step {fn.__name__!r}: output names repeat: {', '.join(names)}")
    return names


def _output_types(returns: Any, outputs: tuple[str, ...] | None) -> dict[str, Any]:
    """Each output's annotated type: ``-> tuple[A, B]`` for two named outputs."""
    if outputs is None:
        return {"output": returns}
    args = get_args(returns) if get_origin(returns) is tuple else ()
    if len(args) == len(outputs) and Ellipsis not in args:
        return dict(zip(outputs, args, strict=True))
    return {}


def _load_step(module: str, qualname: str) -> Step:
    import importlib

    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found  # type: ignore[no-any-return]


def step(fn: Any = None, **options: Any) -> Any:
    """Make a function a pipeline step: ``@step`` or ``@step(cache=False, retries=2,
    timeout=600, resources={"cpus": 2, "gpus": 1, "memory": "4GB"}, outputs=("a", "b"),
    register="model-name")`` (a step over its timeout fails, and is retried like any failure;
    resources go to the Ray executor; ``outputs`` names several outputs; ``register`` stores
    the output as a model package and registers it as the next version of that model)."""
    if fn is None:
        return lambda f: Step(f, **options)
    return Step(fn, **options)


class Pipeline:
    def __init__(self, fn: Any, *, name: str | None = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    def build(self, **params: Any) -> Graph:
        """The graph for these params (steps are recorded, not run)."""
        try:
            bound = self.signature.bind(**params)
        except TypeError as exc:
            raise InvalidInput(f"pipeline {self.name!r}: {exc}") from None
        bound.apply_defaults()
        graph = Graph(self.name)
        with building(graph):
            self.fn(**bound.arguments)
        if not graph.nodes:
            raise InvalidInput(f"pipeline {self.name!r} calls no step")
        return graph

    @property
    def target(self) -> str:
        """``module:name``, what ``opsloop pipelines run`` and ``resume`` load it by."""
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    def run(
        self, *, client: Any = None, experiment: str | None = None, no_cache: bool = False,
        tags: dict[str, str] | None = None, executor: str = "local",
        on_start: Callable[[str], None] | None = None, register_models: bool = True,
        pinned_data: dict[str, str] | None = None, **params: Any,
    ) -> Any:  # fmt: skip
        """Build and run the pipeline, tracked: a run for it (with ``tags``, such as what
        triggered it) and a nested run per step; ``executor`` is ``local`` (threads),
        ``process`` (a process per step) or ``ray`` (see :mod:`opsloop.pipelines.executors`);
        ``on_start`` is called with the pipeline's run id as soon as that run exists;
        ``register_models=False`` keeps ``register=`` steps from registering versions;
        ``pinned_data`` maps data references to the versions to use for them (a resumed or
        reproduced run takes the versions its original resolved, wherever aliases moved).

        Without a ``client``, a run whose every step is cached on the embedded store is
        recorded straight from the cache (:mod:`opsloop.pipelines.cached_run`): the same
        records, with ``outputs`` loaded when first read."""
        from opsloop.pipelines.executors import EXECUTORS

        if executor not in EXECUTORS:
            raise InvalidInput(f"executor {executor!r}: choose {', '.join(EXECUTORS)}")
        params = {name: _plain(value) for name, value in params.items()}
        graph = self.build(**params)
        bound = self.signature.bind(**params)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        recorded = {"opsloop.pipeline.target": self.target,
                    "opsloop.pipeline.params": json.dumps(arguments, sort_keys=True),
                    "opsloop.pipeline.executor": executor, **(tags or {})}  # fmt: skip
        reads_data = any(node.step.data_args for node in graph.nodes)  # resolved by a client
        if client is None and not no_cache and on_start is None and not reads_data:
            from opsloop.pipelines.cached_run import run_all_cached

            cached = run_all_cached(graph, ambient.default_settings(), experiment=experiment,
                                    params=arguments, tags=recorded)  # fmt: skip
            if cached is not None:
                return cached
        from opsloop.pipelines.runner import run_graph

        return run_graph(
            graph, client or ambient.default_client(), experiment=experiment, no_cache=no_cache,
            params=arguments, tags=recorded, executor=executor, on_start=on_start,
            register_models=register_models, pinned_data=pinned_data,
        )  # fmt: skip


def _plain(value: Any) -> Any:
    """A pipeline argument as the JSON-able value its run records: a data version handle
    becomes its reference."""
    sdk = sys.modules.get("opsloop.data.sdk")
    return value.ref if sdk is not None and isinstance(value, sdk.DataVersion) else value


def pipeline(fn: Any = None, *, name: str | None = None) -> Any:
    """Make a function a pipeline: ``@pipeline`` or ``@pipeline(name="training")``."""
    if fn is None:
        return lambda f: Pipeline(f, name=name)
    return Pipeline(fn, name=name)
