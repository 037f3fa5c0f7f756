"""The graph a pipeline function builds: a node per step call, an edge per output passed on.

While :meth:`~opsloop.pipelines.dsl.Pipeline.build` runs the pipeline function, a step call
records a :class:`Node` here and returns a :class:`StepOutput` instead of running. The graph is
checked as it is built (params JSON-able and matching their annotations, edges from earlier
steps of the same graph only). It is what the runner, the cache and the run views work on, so
it sits below them and below the decorators that build it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import InvalidInput

if TYPE_CHECKING:
    from opsloop.pipelines.dsl import Step

__all__ = ["GRAPH_TAG", "Graph", "Node", "StepOutput", "building", "graph_being_built"]

_BUILDING: ContextVar[Graph | None] = ContextVar("opsloop_pipeline_graph", default=None)
_SCALARS = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}


def graph_being_built() -> Graph | None:
    """The graph a pipeline function is building in this context, if any: a step called
    inside one records a node instead of running."""
    return _BUILDING.get()


@contextmanager
def building(graph: Graph) -> Iterator[Graph]:
    """Record the step calls made inside the block as nodes of ``graph``."""
    token = _BUILDING.set(graph)
    try:
        yield graph
    finally:
        _BUILDING.reset(token)


@dataclass(frozen=True)
class StepOutput:
    """The future output of one node; pass it to another step to make an edge."""

    node: int
    step: str
    output: str = "output"
    graph: int = 0  # the graph that made it: an output is an edge only within its own graph

    @property
    def label(self) -> str:
        """``step`` for a step's one output, ``step.name`` for one of several."""
        return self.step if self.output == "output" else f"{self.step}.{self.output}"


@dataclass
class Node:
    index: int
    step: Step
    name: str
    params: dict[str, Any]
    inputs: dict[str, StepOutput]
    data: dict[str, Any] = field(default_factory=dict)  # arg -> DatasetVersion, once resolved


GRAPH_TAG = "opsloop.pipeline.graph"  # what Graph.tag() names


_GRAPHS = itertools.count(1)


@dataclass
class Graph:
    pipeline: str
    nodes: list[Node] = field(default_factory=list)
    token: int = field(default_factory=lambda: next(_GRAPHS))  # its outputs carry it

    def tag(self) -> dict[str, str]:
        """The graph as a tag for the pipeline's run, ``[[step, [input labels]], ...]`` in
        graph order (left out for a graph too large for a tag: its DAG then shows the steps
        that ran)."""
        from opsloop.tracking.validation import MAX_TAG_VALUE_LENGTH

        shape = [[n.name, [o.label for o in n.inputs.values()]] for n in self.nodes]
        text = json.dumps(shape, separators=(",", ":"))
        return {GRAPH_TAG: text} if len(text) <= MAX_TAG_VALUE_LENGTH else {}

    def add(
        self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> StepOutput | tuple[StepOutput, ...]:
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
        if step.outputs is None:
            return StepOutput(node.index, name, graph=self.token)
        return tuple(StepOutput(node.index, name, o, self.token) for o in step.outputs)

    def _check_edge(self, step: Step, arg: str, upstream: StepOutput) -> None:
        """An edge from an earlier node of this graph only: a step takes what steps called
        before it returned, so a graph can have no cycle; an output made elsewhere (another
        pipeline's graph, or one that names no earlier step) is refused."""
        known = upstream.node < len(self.nodes) and self.nodes[upstream.node].name == upstream.step
        if upstream.graph != self.token or not known:
            raise InvalidInput(
                f"step {step.name!r} takes {arg} from {upstream.label!r}, which is not a step "
                "called before it in this pipeline: a step takes outputs of earlier steps of "
                "the same pipeline (so the graph has no cycle)"
            )
        produced = self.nodes[upstream.node].step.output_types.get(upstream.output)
        expected = step.hints.get(arg)
        typed = isinstance(produced, type) and isinstance(expected, type)
        if typed and not issubclass(produced, expected):
            raise InvalidInput(
                f"step {step.name!r} takes {arg}: {expected.__name__}, but "
                f"{upstream.label!r} returns {produced.__name__}"
            )


def _check_param(step: Step, arg: str, value: Any) -> Any:
    if arg in step.data_args:
        return _check_data_ref(step, arg, value)
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


def _check_data_ref(step: Step, arg: str, value: Any) -> str:
    """A ``DataVersion`` param takes a reference (``NAME``, ``NAME@3``, ``NAME@alias``) or a
    handle; the graph keeps the reference, resolved when the pipeline runs."""
    from opsloop.kernel.refs import parse_ref

    ref = getattr(value, "ref", value)
    if not isinstance(ref, str):
        raise InvalidInput(
            f"param {arg!r} of step {step.name!r} takes a data version: pass NAME@N, "
            f"NAME@alias or NAME, got {type(value).__name__} ({value!r})"
        )
    try:
        parse_ref(ref)
    except InvalidInput as exc:
        raise InvalidInput(f"param {arg!r} of step {step.name!r}: {exc.message}") from None
    return ref
