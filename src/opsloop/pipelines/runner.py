"""Running a pipeline graph in this process: a tracking run for the pipeline, a nested run per
step, outputs stored as artifacts, and steps skipped when their cache key matches a finished
step run.

The cache is the tracking store itself: a finished step run carries its cache key and the
parts it was made of as tags (``opsloop.cache.key``, ``.code``, ``.params``, ``.inputs``,
``.env``) and its output as an artifact, so a hit is a run lookup and a download, and a miss
can name the part that differs from the step's last run. A step that raises fails its run with
the traceback (as ``traceback.txt``) and fails the pipeline; the steps that finished before it
stay cached, so the next run starts where this one stopped.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsloop.errors import OpsloopError
from opsloop.pipelines import materializers
from opsloop.pipelines.dsl import Graph, Node
from opsloop.pipelines.hashing import code_hash, combine, env_hash, params_hash

__all__ = ["PipelineFailed", "PipelineRun", "StepResult", "run_graph"]

PARTS = ("code", "params", "inputs", "env")
OUTPUT_TAGS = ("opsloop.output.file", "opsloop.output.kind", "opsloop.output.digest")


@dataclass
class StepResult:
    name: str
    run_id: str
    status: str  # FINISHED, FAILED, SKIPPED
    cached: bool = False
    reason: str = ""
    duration_s: float = 0.0
    digest: str | None = None


@dataclass
class PipelineRun:
    run_id: str
    name: str
    status: str
    steps: list[StepResult] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name)


class PipelineFailed(OpsloopError):
    """A step raised; ``details`` hold the step, its run and the traceback."""

    code = "PIPELINE_FAILED"
    exit_code = 8


def _quote(text: str) -> str:
    return "'" + text.replace("'", "\\'") + "'"


def _last_run(client: Any, experiment: str, tag: str, value: str) -> Any:
    page = client.search_runs(
        experiment,
        f"tags.`{tag}` = {_quote(value)} and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return page.items[0] if page.items else None


def _miss_reason(previous: Any, parts: dict[str, str]) -> str:
    if previous is None:
        return "first run of this step"
    tags = previous.data.tags
    changed = [p for p in PARTS if tags.get(f"opsloop.cache.{p}") != parts[p]]
    return f"{' and '.join(changed) or 'key'} changed since run {previous.info.run_id[:8]}"


def run_graph(
    graph: Graph, client: Any, *, experiment: str | None, no_cache: bool, params: dict[str, Any]
) -> PipelineRun:
    exp_name = experiment or f"pipeline-{graph.pipeline}"
    exp = client.set_experiment(exp_name)
    parent = client.create_run(
        exp.experiment_id, run_name=graph.pipeline, tags={"opsloop.pipeline": graph.pipeline}
    )
    parent_id = parent.info.run_id
    if params:
        client.log_params(parent_id, params)
    result = PipelineRun(parent_id, graph.pipeline, "RUNNING")
    values: dict[int, tuple[Any, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for node in graph.nodes:
            try:
                step_result, value = _run_node(
                    node, client, exp, exp_name, parent_id, values, no_cache, Path(tmp)
                )
            except PipelineFailed as failure:
                result.steps.append(failure.details["result"])
                for rest in graph.nodes[node.index + 1 :]:
                    result.steps.append(StepResult(rest.name, "", "SKIPPED"))
                client.set_tag(parent_id, "opsloop.pipeline.failed_step", node.name)
                client.end_run(parent_id, "FAILED")
                result.status = "FAILED"
                failure.details["pipeline"] = result
                raise
            values[node.index] = (value, step_result.digest or "")
            result.steps.append(step_result)
            result.outputs[node.name] = value
    client.end_run(parent_id, "FINISHED")
    result.status = "FINISHED"
    return result


def _run_node(
    node: Node, client: Any, exp: Any, exp_name: str, parent_id: str,
    values: dict[int, tuple[Any, str]], no_cache: bool, tmp: Path,
) -> tuple[StepResult, Any]:  # fmt: skip
    step = node.step
    code, libraries = code_hash(step.fn)
    inputs = {arg: values[out.node][1] for arg, out in sorted(node.inputs.items())}
    parts = {
        "code": code,
        "params": params_hash(node.params),
        "inputs": params_hash(inputs),
        "env": env_hash(libraries),
    }
    key = combine(parts)
    tags = {f"opsloop.cache.{p}": v for p, v in parts.items()}
    upstream = ",".join(out.step for out in node.inputs.values())
    tags.update(
        {"opsloop.step": node.name, "opsloop.cache.key": key, "opsloop.step.inputs": upstream}
    )
    hit = None
    if step.cache and not no_cache:
        hit = _last_run(client, exp_name, "opsloop.cache.key", key)
    if hit is not None:
        # A cached run holds no output of its own: follow it to the run that computed it.
        source = hit.data.tags.get("opsloop.cache.source", hit.info.run_id)
        run = client.create_run(
            exp.experiment_id, run_name=node.name, parent_run_id=parent_id, capture_env=False,
            tags={**tags, "opsloop.cache": "hit", "opsloop.cache.source": source},
        )  # fmt: skip
        output = {k: hit.data.tags[k] for k in OUTPUT_TAGS}
        folder = client.download_artifacts(source, "output", tmp / node.name)
        value = materializers.load(
            folder / output["opsloop.output.file"], output["opsloop.output.kind"]
        )
        client.set_tags(run.info.run_id, output)
        client.end_run(run.info.run_id, "FINISHED")
        cached = StepResult(
            node.name, run.info.run_id, "FINISHED", cached=True,
            reason=f"cached from run {source[:8]}", digest=output["opsloop.output.digest"],
        )  # fmt: skip
        return cached, value
    if no_cache:
        reason = "--no-cache"
    elif not step.cache:
        reason = "cache=False on this step"
    else:
        reason = _miss_reason(_last_run(client, exp_name, "opsloop.step", node.name), parts)
    run = client.create_run(
        exp.experiment_id, run_name=node.name, parent_run_id=parent_id, capture_env=False,
        tags={**tags, "opsloop.cache": "miss", "opsloop.cache.reason": reason},
    )  # fmt: skip
    run_id = run.info.run_id
    if node.params:
        client.log_params(run_id, node.params)
    arguments = {**node.params, **{arg: values[out.node][0] for arg, out in node.inputs.items()}}
    start = time.perf_counter()
    attempt = 0
    while True:
        try:
            value = step.fn(**arguments)
            break
        except Exception as exc:
            attempt += 1
            if attempt <= step.retries:
                client.set_tag(run_id, "opsloop.step.retries", attempt)
                time.sleep(step.retry_delay * 2 ** (attempt - 1))
                continue
            text = traceback.format_exc()
            client.log_bytes(run_id, text.encode(), "traceback.txt")
            client.set_tag(run_id, "opsloop.error", f"{type(exc).__name__}: {exc}")
            client.end_run(run_id, "FAILED")
            step_result = StepResult(node.name, run_id, "FAILED", reason=reason,
                                     duration_s=time.perf_counter() - start)  # fmt: skip
            raise PipelineFailed(
                f"step {node.name!r} failed: {type(exc).__name__}: {exc}",
                details={
                    "step": node.name,
                    "run_id": run_id,
                    "traceback": text,
                    "result": step_result,
                },
            ) from exc
    duration = time.perf_counter() - start
    folder = tmp / f"{node.name}-out"
    folder.mkdir(parents=True, exist_ok=True)
    path, kind = materializers.save(value, folder, "output")
    artifact = client.log_artifact(run_id, path, "output")[0]
    client.set_tags(run_id, {"opsloop.output.file": path.name, "opsloop.output.kind": kind,
                             "opsloop.output.digest": artifact.digest})  # fmt: skip
    client.log_metric(run_id, "duration_s", duration)
    client.end_run(run_id, "FINISHED")
    return StepResult(node.name, run_id, "FINISHED", reason=reason, duration_s=duration,
                      digest=artifact.digest), value  # fmt: skip
