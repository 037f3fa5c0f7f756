"""``@step`` and ``@pipeline``: a pipeline is a plain function whose step calls build a graph.

Inside a pipeline function a step call does not run the step: it records a node and returns a
:class:`StepOutput` that later steps take as an argument, which is what makes the edges. The
graph is checked as it is built: a param (a plain argument) must be JSON-able and match its
annotation, and an upstream output must match the annotation of the argument it feeds. Outside
a pipeline, a step is its plain function, so it stays unit-testable.

Example::

    @step
    def load(rows: int = 500) -> pd.DataFrame: ...

    @step(cache=False)
    def train(data: pd.DataFrame, C: float = 1.0) -> LogisticRegression: ...

    @pipeline
    def training(C: float = 1.0) -> None:
        train(load(), C=C)

    training.run(C=0.5)
"""

from __future__ import annotations

import functools
import inspect
import json
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from opsloop.errors import InvalidInput

__all__ = ["Graph", "Node", "Pipeline", "Step", "StepOutput", "pipeline", "step"]

_BUILDING: ContextVar[Graph | None] = ContextVar("opsloop_pipeline_graph", default=None)
_SCALARS = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}


@dataclass(frozen=True)
class StepOutput:
    """The future output of one node; pass it to another step to make an edge."""

    node: int
    step: str


@dataclass
class Node:
    index: int
    step: Step
    name: str
    params: dict[str, Any]
    inputs: dict[str, StepOutput]


@dataclass
class Graph:
    pipeline: str
    nodes: list[Node] = field(default_factory=list)

    def add(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> StepOutput:
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"step {step.name!r}: {exc}") from None
        bound.apply_defaults()
        params, inputs = {}, {}
        for arg, value in bound.arguments.items():
            if isinstance(value, StepOutput):
                self._check_edge(step, arg, value)
                inputs[arg] = value
            else:
                params[arg] = _check_param(step, arg, value)
        count = sum(1 for n in self.nodes if n.step.name == step.name)
        name = step.name if count == 0 else f"{step.name}_{count + 1}"
        node = Node(len(self.nodes), step, name, params, inputs)
        self.nodes.append(node)
        return StepOutput(node.index, name)

    def _check_edge(self, step: Step, arg: str, upstream: StepOutput) -> None:
        produced = self.nodes[upstream.node].step.returns
        expected = step.hints.get(arg)
        typed = isinstance(produced, type) and isinstance(expected, type)
        if typed and not issubclass(produced, expected):
            raise InvalidInput(
                f"step {step.name!r} takes {arg}: {expected.__name__}, but "
                f"{upstream.step!r} returns {produced.__name__}"
            )


def _check_param(step: Step, arg: str, value: Any) -> Any:
    expected = step.hints.get(arg)
    allowed = _SCALARS.get(expected) if isinstance(expected, type) else None
    if allowed is not None and not (isinstance(value, allowed) and not (
        isinstance(value, bool) and expected is not bool
    )):  # fmt: skip
        raise InvalidInput(
            f"param {arg!r} of step {step.name!r} expects {expected.__name__}, "
            f"got {type(value).__name__} ({value!r})"
        )
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"param {arg!r} of step {step.name!r} is a {type(value).__name__}: params are "
            "JSON-able values; pass data from another step instead"
        ) from None
    return value


class Step:
    """A function that a pipeline runs as a tracked, cached step."""

    def __init__(
        self, fn: Any, *, name: str | None = None, cache: bool = True, retries: int = 0,
        retry_delay: float = 1.0, timeout: float | None = None,
        resources: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        from opsloop.pipelines.executors import parse_resources

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
        self.returns = self.hints.get("return")
        functools.update_wrapper(self, fn)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        """Pickled by reference (module and name), for the process and Ray executors."""
        return _load_step, (self.fn.__module__, self.fn.__qualname__)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        graph = _BUILDING.get()
        if graph is None:
            return self.fn(*args, **kwargs)
        return graph.add(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<step {self.name}>"


def _load_step(module: str, qualname: str) -> Step:
    import importlib

    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found  # type: ignore[no-any-return]


def step(fn: Any = None, **options: Any) -> Any:
    """Make a function a pipeline step: ``@step`` or ``@step(cache=False, retries=2,
    timeout=600, resources={"cpus": 2, "gpus": 1, "memory": "4GB"})`` (a step over its
    timeout fails, and is retried like any failure; resources go to the Ray executor)."""
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
        token = _BUILDING.set(graph)
        try:
            self.fn(**bound.arguments)
        finally:
            _BUILDING.reset(token)
        if not graph.nodes:
            raise InvalidInput(f"pipeline {self.name!r} calls no step")
        return graph

    @property
    def target(self) -> str:
        """``module:name``, what ``opsloop pipelines run`` and ``resume`` load it by."""
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    def run(
        self, *, client: Any = None, experiment: str | None = None, no_cache: bool = False,
        tags: dict[str, str] | None = None, executor: str = "local", **params: Any,
    ) -> Any:  # fmt: skip
        """Build and run the pipeline, tracked: a run for it (with ``tags``, such as what
        triggered it) and a nested run per step; ``executor`` is ``local`` (threads),
        ``process`` (a process per step) or ``ray`` (see :mod:`opsloop.pipelines.executors`)."""
        from opsloop.pipelines.executors import EXECUTORS
        from opsloop.pipelines.runner import run_graph
        from opsloop.tracking.fluent import get_client

        if executor not in EXECUTORS:
            raise InvalidInput(f"executor {executor!r}: choose {', '.join(EXECUTORS)}")
        graph = self.build(**params)
        bound = self.signature.bind(**params)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        recorded = {"opsloop.pipeline.target": self.target,
                    "opsloop.pipeline.params": json.dumps(arguments, sort_keys=True),
                    "opsloop.pipeline.executor": executor, **(tags or {})}  # fmt: skip
        return run_graph(
            graph, client or get_client(), experiment=experiment, no_cache=no_cache,
            params=arguments, tags=recorded, executor=executor,
        )  # fmt: skip


def pipeline(fn: Any = None, *, name: str | None = None) -> Any:
    """Make a function a pipeline: ``@pipeline`` or ``@pipeline(name="training")``."""
    if fn is None:
        return lambda f: Pipeline(f, name=name)
    return Pipeline(fn, name=name)
