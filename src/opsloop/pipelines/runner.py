"""Running a pipeline graph in this process: a tracking run for the pipeline, a nested run per
step, outputs stored as artifacts, and steps skipped when their cache key matches a finished
step run.

The cache is the tracking store itself: a finished step run carries its cache key and the
parts it was made of as tags (``opsloop.cache.key``, ``.code``, ``.params``, ``.inputs``,
``.env``) and its outputs as artifacts under ``output/``, described by the ``opsloop.outputs``
tag (name -> file, materializer kind, content digest), so a hit is a run lookup and a
download, and a miss can name the part that differs from the step's last run. A step declared
with ``register=`` stores its output as a model package and registers it; a cache hit reuses
that version instead of registering the same model again. A step that raises fails its run with
the traceback (as ``traceback.txt``) and fails the pipeline; the steps that finished before it
stay cached, so the next run starts where this one stopped. A step is retried under its own
``retries`` whatever ended an attempt (an exception, a timeout, a worker that died), and each
attempt is recorded on its run (:mod:`opsloop.pipelines.attempts`), with what it printed.
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
import traceback
from collections.abc import Callable
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import NoReturn

from opsloop.errors import OpsloopError
from opsloop.kernel import ambient
from opsloop.kernel.step_context import STEP_RUN_TAG
from opsloop.kernel.step_context import current_rehearsal
from opsloop.kernel.step_context import enter_step
from opsloop.kernel.timeutil import now_ms
from opsloop.pipelines.attempts import ATTEMPTS_TAG
from opsloop.pipelines.attempts import RETRIES_TAG
from opsloop.pipelines.attempts import Attempt
from opsloop.pipelines.attempts import attempts_tag
from opsloop.pipelines.attempts import keep_unfinished_logs
from opsloop.pipelines.cache_index import DIGEST_TAG
from opsloop.pipelines.cache_index import MODEL_TAG
from opsloop.pipelines.cache_index import OUTPUTS_TAG
from opsloop.pipelines.cache_index import CacheIndex
from opsloop.pipelines.cache_index import miss_reason
from opsloop.pipelines.cancel import CANCEL_POLL_S
from opsloop.pipelines.cancel import Cancellation
from opsloop.pipelines.data_inputs import data_handle
from opsloop.pipelines.data_inputs import data_tags
from opsloop.pipelines.data_inputs import resolve_data_inputs
from opsloop.pipelines.executors import StepCancelled
from opsloop.pipelines.executors import execute
from opsloop.pipelines.graph import Graph
from opsloop.pipelines.graph import Node
from opsloop.pipelines.hashing import code_hash
from opsloop.pipelines.hashing import combine
from opsloop.pipelines.hashing import env_hash
from opsloop.pipelines.hashing import params_hash
from opsloop.pipelines.journal import StepJournal
from opsloop.pipelines.orphans import HEARTBEAT_TAG
from opsloop.pipelines.orphans import LAUNCHER_TAG
from opsloop.pipelines.orphans import Heartbeat
from opsloop.pipelines.orphans import this_process
from opsloop.pipelines.step_logs import capturing
from opsloop.pipelines.step_logs import keep_logs
from opsloop.pipelines.step_outputs import cached_run_tags
from opsloop.pipelines.step_outputs import described_digest
from opsloop.pipelines.step_outputs import load_outputs
from opsloop.pipelines.step_outputs import step_value
from opsloop.pipelines.step_outputs import store_outputs

__all__ = ["PipelineCancelled", "PipelineFailed", "PipelineRun", "StepResult", "run_graph"]


@dataclass
class StepResult:
    name: str
    run_id: str
    status: str  # FINISHED, FAILED, SKIPPED
    cached: bool = False
    reason: str = ""
    duration_s: float = 0.0
    digest: str | None = None
    model_version: str | None = None
    attempts: list[Attempt] = field(default_factory=list)  # none for a cached step


@dataclass
class PipelineRun:
    run_id: str
    name: str
    status: str
    steps: list[StepResult] = field(default_factory=list)
    outputs: Mapping[str, Any] = field(default_factory=dict)  # step -> its value(s)

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name)


class PipelineFailed(OpsloopError):
    """A step raised; ``details`` hold the step, its run and the traceback."""

    code = "PIPELINE_FAILED"
    exit_code = 8


class PipelineCancelled(PipelineFailed):
    """The run was cancelled (``opsloop pipelines cancel``); ``details["pipeline"]`` is it."""

    code = "PIPELINE_CANCELLED"


def _inputs_ready(node: Node, values: dict[int, Any]) -> bool:
    return all(i.node in values for i in node.inputs.values())


def _drive(
    graph: Graph, ctx: _Context, pool: ThreadPoolExecutor, results: dict[int, StepResult],
    outputs: dict[str, Any],
) -> PipelineFailed | None:  # fmt: skip
    """Start each node once its inputs are ready, until all ran or one failed; the failure.
    Each finished step's value goes into ``outputs``."""
    values = ctx.values  # fills as steps finish
    failure: PipelineFailed | None = None
    pending = {node.index: node for node in graph.nodes}
    running: dict[Future[Any], Node] = {}
    while pending or running:
        if failure is None and not ctx.cancel.requested():
            ready = [n for n in pending.values() if _inputs_ready(n, values)]
            for node in ready:
                del pending[node.index]
                if len(ready) == 1 and not running:  # nothing to overlap: no thread hop
                    running[_run_inline(node, ctx)] = node
                else:
                    running[pool.submit(_run_node, node, ctx)] = node
        if not running:
            break
        finished, _ = wait(running, timeout=CANCEL_POLL_S, return_when=FIRST_COMPLETED)
        for future in finished:
            node = running.pop(future)
            try:
                step_result, value = future.result()
            except PipelineFailed as exc:
                failure = failure or exc
                results[node.index] = exc.details["result"]
                continue
            values[node.index] = value
            results[node.index] = step_result
            outputs[node.name] = step_value(node, value)
    return failure


def _in_step(
    run_id: str, settings: Any, on_use: Any, attempt: int, spool: str, rehearsal: Any, fn: Any,
    /, **arguments: Any,
) -> Any:  # fmt: skip
    # in the thread, process or worker running it; ``spool``: the attempt's folder for its
    # output as it is written (see step_logs), which the driver reads if this never ends
    with enter_step(run_id, settings, on_use, rehearsal), capturing(spool) as logs:
        try:
            return fn(**arguments)
        finally:
            ambient.flush_step_metrics(run_id, settings)  # its metrics land before its run ends
            if logs.release():  # else the driver took this attempt's output (a timeout)
                keep_logs(logs, attempt)


def experiment_for(graph: Graph, experiment: str | None) -> str:
    """The experiment a pipeline's runs go to: the one named, else ``pipeline-NAME``."""
    return experiment or f"pipeline-{graph.pipeline}"


def pipeline_tags(graph: Graph, tags: dict[str, str] | None = None) -> dict[str, str]:
    """The tags a pipeline's own run starts with: its graph, its name, its launcher and its
    first heartbeat."""
    return {**(tags or {}), **graph.tag(), "opsloop.pipeline": graph.pipeline,
            LAUNCHER_TAG: this_process(), HEARTBEAT_TAG: str(now_ms())}  # fmt: skip


def run_graph(
    graph: Graph,
    client: Any,
    *,
    experiment: str | None,
    no_cache: bool,
    params: dict[str, Any],
    max_workers: int = 4,
    tags: dict[str, str] | None = None,
    executor: str = "local",
    on_start: Callable[[str], None] | None = None,
    register_models: bool = True,
    pinned_data: dict[str, str] | None = None,
) -> PipelineRun:
    """Run every node once its inputs are ready; independent steps run side by side on up to
    ``max_workers`` threads (NumPy, pandas and scikit-learn release the GIL in their heavy
    parts). On the first failure no new step starts, the running ones finish, and the rest
    are reported as skipped. ``register_models=False`` stores ``register=`` steps' packages
    without registering them (a reproduction checks a model; it does not publish one).
    ``DataVersion`` params are resolved first (``pinned_data`` before the store; see
    :mod:`opsloop.pipelines.data_inputs`)."""
    resolved = resolve_data_inputs(graph, client, pinned_data)  # an unknown one starts nothing
    exp = client.set_experiment(experiment_for(graph, experiment))
    parent = client.create_run(
        exp.experiment_id, run_name=graph.pipeline,
        tags=pipeline_tags(graph, {**(tags or {}), **data_tags(resolved)}),
    )  # fmt: skip
    parent_id = parent.info.run_id
    if on_start is not None:
        on_start(parent_id)
    if params:
        client.log_params(parent_id, params)
    for ref in sorted(set(resolved.values())):
        client.data.log_input(parent_id, ref)
    outputs: dict[str, Any] = {}
    result = PipelineRun(parent_id, graph.pipeline, "RUNNING", outputs=outputs)
    values: dict[int, dict[str, tuple[Any, str]]] = {}  # node -> output -> (value, digest)
    results: dict[int, StepResult] = {}
    journal = StepJournal(client)
    heartbeat = Heartbeat(client, parent_id)  # how a scheduler elsewhere knows it still runs
    try:
        with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers) as pool:
            ctx = _Context(client, exp, CacheIndex.load(client, exp), parent_id, values,
                           no_cache, Path(tmp), executor, register_models, journal,
                           Cancellation(client, parent_id),
                           rehearsal=current_rehearsal())  # fmt: skip
            try:
                failure = _drive(graph, ctx, pool, results, outputs)
            finally:
                journal.close()  # the step records are written before the pipeline's run ends
            for run_id, ref in ctx.consumed:  # the step runs exist now
                client.data.log_input(run_id, ref)
            for run_id, tags in ctx.finished:  # written: later runs here may reuse them
                ctx.index.add(run_id, tags)
    finally:
        heartbeat.stop()
    for node in graph.nodes:
        result.steps.append(results.get(node.index) or StepResult(node.name, "", "SKIPPED"))
    if ctx.cancel.by is not None:
        message = (f"cancelled by {ctx.cancel.by}; `opsloop pipelines resume {parent_id}` "
                   "runs what did not finish")  # fmt: skip
        client.set_tag(parent_id, "opsloop.error", message)
        client.end_run(parent_id, "KILLED")
        result.status = "KILLED"
        raise PipelineCancelled(
            f"pipeline run {parent_id} was {message}",
            details={"pipeline": result, "step": failure.details["step"] if failure else None,
                     "traceback": failure.details["traceback"] if failure else ""},
        )  # fmt: skip
    if failure is not None:
        client.set_tag(parent_id, "opsloop.pipeline.failed_step", failure.details["step"])
        client.end_run(parent_id, "FAILED")
        result.status = "FAILED"
        failure.details["pipeline"] = result
        raise failure
    client.end_run(parent_id, "FINISHED")
    result.status = "FINISHED"
    return result


@dataclass
class _Context:
    """What every step of one pipeline run shares."""

    client: Any
    exp: Any
    index: CacheIndex
    parent_id: str
    values: dict[int, dict[str, tuple[Any, str]]]  # node -> output -> (value, digest)
    no_cache: bool
    tmp: Path
    executor: str
    register_models: bool
    journal: StepJournal
    cancel: Cancellation
    finished: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # for the index
    consumed: list[tuple[str, str]] = field(default_factory=list)  # (step run, NAME@N) read
    _code: dict[Any, tuple[str, str]] = field(default_factory=dict)
    rehearsal: Any = None  # a reproduction's: the steps' writes outside their runs are held

    def code_of(self, step: Any) -> tuple[str, str]:
        """The step's code and environment hashes, computed once per pipeline run (a step
        used ten times in a graph is read and hashed once; edits between runs are seen)."""
        found = self._code.get(step)
        if found is None:
            code, libraries = code_hash(step.fn)
            found = self._code[step] = (code, env_hash(libraries))
        return found


def _run_inline(node: Node, ctx: _Context) -> Future[Any]:
    future: Future[Any] = Future()
    try:
        future.set_result(_run_node(node, ctx))
    except BaseException as exc:
        future.set_exception(exc)
    return future


def step_identity(
    node: Node, code_and_env: tuple[str, str], inputs: dict[str, str]
) -> tuple[str, dict[str, str], dict[str, str]]:
    """A step's cache key, the parts it is made of, and the tags its run carries for them;
    ``inputs`` maps each argument to the digest of the output it takes."""
    code, env = code_and_env
    params = {a: v for a, v in node.params.items() if a not in node.data}
    parts = {
        "code": code,
        "params": params_hash(params),
        "inputs": params_hash(dict(sorted(inputs.items()))),
        "env": env,
    }
    if node.data:  # the versions' content, not the words that named them
        parts["data"] = params_hash({a: v.version_id for a, v in sorted(node.data.items())})
    key = combine(parts)
    tags = {f"opsloop.cache.{p}": v for p, v in parts.items()}
    upstream = ",".join(o.label for o in node.inputs.values())
    tags.update(
        {"opsloop.step": node.name, "opsloop.cache.key": key, "opsloop.step.inputs": upstream}
    )
    return key, parts, tags


def _run_node(node: Node, ctx: _Context) -> tuple[StepResult, dict[str, tuple[Any, str]]]:
    client, exp, parent_id, values, tmp = ctx.client, ctx.exp, ctx.parent_id, ctx.values, ctx.tmp
    no_cache = ctx.no_cache
    step = node.step
    inputs = {arg: values[o.node][o.output][1] for arg, o in node.inputs.items()}
    key, parts, tags = step_identity(node, ctx.code_of(step), inputs)
    hit = None
    if step.cache and not no_cache:
        hit = ctx.index.hit(key)
    if hit is not None:
        return _from_cache(node, ctx, hit, tags)
    if no_cache:
        reason = "--no-cache"
    elif not step.cache:
        reason = "cache=False on this step"
    else:
        reason = miss_reason(ctx.index.last(node.name), parts)
    journal = ctx.journal
    run_id = journal.create_run(
        exp.experiment_id, run_name=node.name, parent_run_id=parent_id,
        tags={**tags, "opsloop.cache": "miss", "opsloop.cache.reason": reason},
    )  # fmt: skip
    on_use = journal.ensure if ctx.executor == "local" else None
    if on_use is None:
        journal.flush()  # the step runs elsewhere: its run must exist before it starts
    arguments = {
        **node.params,
        **{arg: data_handle(client, version) for arg, version in node.data.items()},
        **{arg: values[o.node][o.output][0] for arg, o in node.inputs.items()},
    }
    ctx.consumed += [(run_id, version.ref) for version in node.data.values()]
    start = time.perf_counter()
    attempts: list[Attempt] = []
    while True:  # one attempt a turn; retries=N allows N+1, whatever ended each
        number = len(attempts) + 1
        spool = tmp / "attempts" / f"{run_id}-{number}"
        spool.mkdir(parents=True)
        call = functools.partial(
            _in_step, run_id, client.settings, on_use, number, str(spool), ctx.rehearsal, step,
            **arguments,
        )  # fmt: skip
        began = time.perf_counter()
        try:
            value = execute(ctx.executor, call, step.timeout, step.resources, ctx.cancel.requested)
        except Exception as exc:
            attempts.append(Attempt.ended(number, exc, time.perf_counter() - began))
            keep_unfinished_logs(client, journal, run_id, spool, attempts[-1])
            if isinstance(exc, StepCancelled):
                _fail(ctx, node, run_id, exc, reason, start, status="KILLED", attempts=attempts)
            if number <= step.retries:
                journal.flush()
                so_far = {RETRIES_TAG: number, ATTEMPTS_TAG: attempts_tag(attempts)}
                client.set_tags(run_id, so_far)  # a running step shows its attempts
                time.sleep(step.retry_delay * 2 ** (number - 1))
                continue
            _fail(ctx, node, run_id, exc, reason, start, attempts=attempts)
        attempts.append(Attempt(number, "succeeded", round(time.perf_counter() - began, 3)))
        keep_unfinished_logs(client, journal, run_id, spool, attempts[-1])  # kept already: none
        break
    duration = time.perf_counter() - start
    try:
        described, outputs = store_outputs(journal, run_id, node, value, tmp)
    except Exception as exc:  # an output no materializer takes, a wrong number of outputs
        _fail(ctx, node, run_id, exc, reason, start, attempts=attempts)
    digest = described_digest(described)
    journal.finish(  # what the step ended with
        run_id, "FINISHED", metrics=[("duration_s", duration, 0, now_ms())], params=node.params,
        tags={OUTPUTS_TAG: json.dumps(described, sort_keys=True), DIGEST_TAG: digest,
              ATTEMPTS_TAG: attempts_tag(attempts)},
    )  # fmt: skip
    model_version = None
    if step.register is not None and ctx.register_models:
        journal.flush()  # registering reads the finished run's package
        version = client.models.register(
            step.register, run_id=run_id, artifact_path=f"output/{described['output']['file']}",
            description=f"from step {node.name} of pipeline run {parent_id}",
            tags={STEP_RUN_TAG: run_id, "opsloop.pipeline.run": parent_id},
        )  # fmt: skip
        model_version = version.ref
        client.set_tag(run_id, MODEL_TAG, model_version)
    ended = {**tags, OUTPUTS_TAG: json.dumps(described, sort_keys=True), DIGEST_TAG: digest}
    ctx.finished.append((run_id, {**ended, MODEL_TAG: model_version} if model_version else ended))
    result = StepResult(node.name, run_id, "FINISHED", reason=reason, duration_s=duration,
                        digest=digest, model_version=model_version,
                        attempts=attempts)  # fmt: skip
    return result, outputs


def _from_cache(
    node: Node, ctx: _Context, hit: Any, tags: dict[str, str]
) -> tuple[StepResult, dict[str, tuple[Any, str]]]:
    """A cached step: a run that points at the run that computed the outputs, which are read
    back from there (a cached run holds no output of its own)."""
    source, run_tags = cached_run_tags(hit, tags)
    described = json.loads(run_tags[OUTPUTS_TAG])
    run_id = ctx.journal.create_run(
        ctx.exp.experiment_id, run_name=node.name, parent_run_id=ctx.parent_id, tags=run_tags
    )
    ctx.finished.append((run_id, run_tags))
    outputs = load_outputs(
        described, ctx.journal.blob_path,
        lambda: ctx.client.download_artifacts(source, "output", ctx.tmp / node.name),
    )  # fmt: skip
    ctx.journal.finish(run_id, "FINISHED")
    return cached_result(node.name, run_id, source, run_tags), outputs


def cached_result(name: str, run_id: str, source: str, run_tags: dict[str, str]) -> StepResult:
    return StepResult(
        name, run_id, "FINISHED", cached=True, reason=f"cached from run {source[:8]}",
        digest=run_tags.get(DIGEST_TAG), model_version=run_tags.get(MODEL_TAG),
    )  # fmt: skip


def _fail(
    ctx: _Context, node: Node, run_id: str, exc: Exception, reason: str, start: float,
    status: str = "FAILED", attempts: list[Attempt] | None = None,
) -> NoReturn:  # fmt: skip
    """End the step's run FAILED (or KILLED) with the traceback and its attempts, and fail
    the pipeline."""
    client = ctx.client
    ctx.journal.flush()
    text = traceback.format_exc()
    client.log_bytes(run_id, text.encode(), "traceback.txt")
    tags = {"opsloop.error": f"{type(exc).__name__}: {exc}"}
    if attempts:
        tags[ATTEMPTS_TAG] = attempts_tag(attempts)
    client.log_batch(run_id, params=node.params, tags=tags)
    client.end_run(run_id, status)
    step_result = StepResult(node.name, run_id, status, reason=reason,
                             duration_s=time.perf_counter() - start,
                             attempts=list(attempts or []))  # fmt: skip
    raise PipelineFailed(
        f"step {node.name!r} failed: {type(exc).__name__}: {exc}",
        details={"step": node.name, "run_id": run_id, "traceback": text, "result": step_result},
    ) from exc
