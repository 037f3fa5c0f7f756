"""``opsloop pipelines run`` and ``opsloop pipelines show``."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from opsloop.cli.output import console, default_client, parse_tags, print_json

pipelines_app = typer.Typer(
    help=(
        "Pipelines of @step functions: each run is a tracked run with a nested run per step, "
        "outputs stored as artifacts, and steps skipped when their code, params, inputs and "
        "environment are unchanged. Examples:\n\n"
        "  opsloop pipelines run training.py:training --param C=0.5\n\n"
        "  opsloop pipelines run mypkg.pipelines:training --no-cache\n\n"
        "  opsloop pipelines show RUN_ID"
    ),
    no_args_is_help=True,
)


def load_pipeline(target: str) -> Any:
    """``module:attr`` or ``path/to/file.py:attr`` as the pipeline object it names."""
    from opsloop.errors import InvalidInput
    from opsloop.pipelines.dsl import Pipeline

    where, _, attr = target.rpartition(":")
    if not where or not attr:
        raise InvalidInput(f"{target!r}: name the pipeline as MODULE:NAME or FILE.py:NAME")
    sys.path.insert(0, str(Path.cwd()))
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise InvalidInput(f"no such file: {path}")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ImportError as exc:
        raise InvalidInput(f"cannot import {where}: {exc}") from None
    found = getattr(module, attr, None)
    if not isinstance(found, Pipeline):
        raise InvalidInput(f"{target} is not a @pipeline")
    return found


@pipelines_app.command("run")
def run(
    target: Annotated[str, typer.Argument(help="MODULE:NAME or FILE.py:NAME of a @pipeline.")],
    param: Annotated[list[str] | None, typer.Option(help="KEY=VALUE (JSON values).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step.")] = False,
    experiment: Annotated[
        str | None, typer.Option(help="Experiment (default: pipeline-NAME).")
    ] = None,
) -> None:
    """Run a pipeline, tracked and cached; print each step's state, time and cache verdict."""
    from opsloop.pipelines.runner import PipelineFailed

    found = load_pipeline(target)
    params = {}
    for key, raw in parse_tags(param).items():
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    try:
        result = found.run(
            client=default_client(), experiment=experiment, no_cache=no_cache, **params
        )
    except PipelineFailed as failure:
        _print_steps(failure.details["pipeline"])
        console(stderr=True).print(failure.details["traceback"], markup=False)
        raise
    _print_steps(result)


def _print_steps(result: Any) -> None:
    out = console()
    out.print(f"pipeline {result.name}: {result.status}  (run {result.run_id})")
    for s in result.steps:
        mark = {"FINISHED": "[green]✓[/]", "FAILED": "[red]✗[/]", "SKIPPED": "[dim]-[/]"}[s.status]
        how = "cached" if s.cached else (f"{s.duration_s:.2f} s" if s.status != "SKIPPED" else "")
        out.print(f"  {mark} {s.name:<20} {how:<10} [dim]{s.reason}[/]")


@pipelines_app.command("show")
def show(run_id: str, json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A pipeline run's steps in order, with their inputs, state, duration and cache verdict."""
    client = default_client()
    parent = client.get_run(run_id)
    experiment = parent.info.experiment_id
    steps = client.search_runs(
        experiment, f"attributes.parent_run_id = '{run_id}'", order_by=["attributes.start_time"]
    ).items
    rows = [
        {
            "step": s.info.run_name,
            "status": s.info.status,
            "inputs": [i for i in s.data.tags.get("opsloop.step.inputs", "").split(",") if i],
            "cache": s.data.tags.get("opsloop.cache", ""),
            "reason": s.data.tags.get("opsloop.cache.reason")
            or f"cached from {s.data.tags.get('opsloop.cache.source', '')[:8]}",
            "duration_s": s.data.metrics.get("duration_s"),
            "run_id": s.info.run_id,
        }
        for s in steps
    ]
    if json_:
        print_json({"run_id": run_id, "status": parent.info.status, "steps": rows})
        return
    out = console()
    out.print(f"pipeline {parent.info.run_name}: {parent.info.status}  (run {run_id})")
    for r in rows:
        arrow = f" ← {', '.join(r['inputs'])}" if r["inputs"] else ""
        took = "cached" if r["cache"] == "hit" else (
            f"{r['duration_s']:.2f} s" if r["duration_s"] is not None else "")  # fmt: skip
        out.print(f"  {r['step']}{arrow}  [{r['status']}] {took}  [dim]{r['reason']}[/]")
