"""``opsloop pipelines run|show|logs|cancel|resume|runs``, ``opsloop runs reproduce`` and
``opsloop tune`` (the ``triggers`` group lives in :mod:`opsloop.pipelines.triggers_cli`)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated
from typing import Any

import typer

from opsloop.console.commands import command_group
from opsloop.console.files import read_yaml_mapping
from opsloop.console.output import command_client
from opsloop.console.output import console
from opsloop.console.output import parse_params
from opsloop.console.output import print_json
from opsloop.errors import InvalidInput
from opsloop.pipelines.loading import load_pipeline
from opsloop.pipelines.triggers_cli import triggers_app

pipelines_app = command_group(
    "Pipelines of @step functions: each run is a tracked run with a nested run per step, "
    "outputs stored as artifacts, and steps skipped when their code, params, inputs and "
    "environment are unchanged. Examples:\n\n"
    "  opsloop pipelines run training.py:training --param C=0.5\n\n"
    "  opsloop pipelines run mypkg.pipelines:training --no-cache\n\n"
    "  opsloop pipelines show RUN_ID",
    aliases={"list": "runs list"},
)


_ON_SERVER = typer.Option(
    "--on-server",
    help="Run it on the server OPSLOOP_SERVER_URL names (the module must be importable "
    "there) and follow it until it ends.",
)


def _server_client() -> Any:
    client = command_client()
    if not client.pipelines.runs_on_server:
        raise InvalidInput("--on-server needs a server: set OPSLOOP_SERVER_URL")
    return client


@pipelines_app.command("run")
def run(
    target: Annotated[str, typer.Argument(help="MODULE:NAME or FILE.py:NAME of a @pipeline.")],
    param: Annotated[list[str] | None, typer.Option(help="KEY=VALUE (JSON values).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step.")] = False,
    experiment: Annotated[
        str | None, typer.Option(help="Experiment (default: pipeline-NAME).")
    ] = None,
    on_server: Annotated[bool, _ON_SERVER] = False,
) -> None:
    """Run a pipeline, tracked and cached; print each step's state, time and cache verdict."""
    from opsloop.pipelines.runner import PipelineFailed

    params = parse_params(param)
    if on_server:
        view = _server_client().pipelines.run(target, params=params, experiment=experiment,
                                              no_cache=no_cache)  # fmt: skip
        show(view.run_id)
        if view.status != "FINISHED":
            raise typer.Exit(8)
        return
    found = load_pipeline(target)
    try:
        result = found.run(experiment=experiment, no_cache=no_cache, **params)  # fluent's client
    except PipelineFailed as failure:
        failed = failure.details["pipeline"]
        _print_steps(failed)
        err = console(stderr=True)
        err.print(failure.details["traceback"], markup=False)
        if failure.details.get("step"):
            err.print(f"what it printed: opsloop pipelines logs {failed.run_id} "
                      f"{failure.details['step']}", markup=False)  # fmt: skip
        err.print(f"to go on: opsloop pipelines resume {failed.run_id}", markup=False)
        raise
    _print_steps(result)


def _print_steps(result: Any) -> None:
    out = console()
    out.print(f"pipeline {result.name}: {result.status}  (run {result.run_id})")
    for s in result.steps:
        mark = _MARKS.get(s.status, "?")
        how = "cached" if s.cached else (f"{s.duration_s:.2f} s" if s.status != "SKIPPED" else "")
        out.print(f"  {mark} {s.name:<20} {how:<10} [dim]{s.reason}[/]")
        _print_attempts(s.attempts, 6)


def _print_attempts(attempts: list[Any], indent: int) -> None:
    """A line per attempt (number, outcome, time, error) under a step that was retried or whose
    one attempt did not succeed; nothing under a clean single success."""
    if not attempts or (len(attempts) == 1 and attempts[0].outcome == "succeeded"):
        return
    out = console()
    for a in attempts:
        took = f"{a.duration_s:.2f} s" if a.duration_s is not None else ""
        outcome = a.outcome or "running"
        color = "green" if outcome == "succeeded" else ("yellow" if outcome == "running" else "red")
        out.print(f"{' ' * indent}attempt {a.number:<3} [{color}]{outcome:<9}[/] {took:>7}  "
                  f"[dim]{a.error or ''}[/]", highlight=False)  # fmt: skip


_MARKS = {"FINISHED": "[green]✓[/]", "FAILED": "[red]✗[/]", "RUNNING": "[yellow]▶[/]",
          "PENDING": "[dim]·[/]", "SKIPPED": "[dim]-[/]", "KILLED": "[red]✗[/]"}  # fmt: skip


@pipelines_app.command("show")
def show(
    run_id: str,
    json_: Annotated[bool, typer.Option("--json", help="The DAG as JSON.")] = False,
) -> None:
    """Draw a pipeline run's DAG: its steps column by column (steps in one column only wait
    for earlier columns), each with its inputs, state, duration and cache verdict, and under
    a step that was retried (or crashed), each attempt: outcome, time and error."""
    from opsloop.pipelines.runs import describe

    view = describe(command_client(), run_id)
    if json_:
        print_json(view.model_dump(mode="json"))
        return
    out = console()
    out.print(f"pipeline [bold]{view.pipeline}[/]: {view.status}  (run {view.run_id})")
    if view.target:
        params = ", ".join(f"{k}={v!r}" for k, v in view.params.items())
        out.print(f"  [dim]{view.target}({params})[/]" + (
            f"  [dim]triggered by {view.trigger}[/]" if view.trigger else ""))  # fmt: skip
    if view.data_versions:
        read = ", ".join(f"{ref} → {version}" if ref != version else ref
                         for ref, version in view.data_versions.items())  # fmt: skip
        out.print(f"  [dim]read {read}[/]", highlight=False)
    if view.error:
        out.print(f"  [red]{view.error}[/]", highlight=False)
    width = max((len(s.name) for s in view.steps), default=0)
    previous = -1
    for s in sorted(view.steps, key=lambda s: s.rank):
        column = f"{s.rank + 1:>2}" if s.rank != previous else "  "
        previous = s.rank
        took = "cached" if s.cache == "hit" else (
            f"{s.duration_s:.2f} s" if s.duration_s is not None else "")  # fmt: skip
        inputs = f"← {', '.join(s.inputs)}" if s.inputs else ""
        model = f"  → {s.model_version}" if s.model_version else ""
        note = s.error or s.reason or s.status.lower()
        out.print(f"{column} {_MARKS.get(s.status, '?')} {s.name:<{width}}  {inputs:<28} "
                  f"{took:>8}  [dim]{note}[/]{model}", highlight=False)  # fmt: skip
        _print_attempts(s.attempts, 7)


@pipelines_app.command("cancel")
def cancel_command(run_id: str) -> None:
    """Stop a running pipeline run: no step starts once it sees the request (within about a
    second), a step in a process or on Ray is killed, one on a thread finishes. The run ends
    KILLED; `opsloop pipelines resume RUN_ID` runs what did not finish."""
    command_client().pipelines.cancel(run_id)
    console().print(f"asked pipeline run {run_id} to cancel; it ends KILLED within seconds")


@pipelines_app.command("logs")
def logs_command(
    run_id: str,
    step: Annotated[str | None, typer.Argument(help="One step (default: every step).")] = None,
    json_: Annotated[bool, typer.Option("--json", help="The logs as JSON.")] = False,
) -> None:
    """Print what the steps of a pipeline run printed, warned and logged (each step's run keeps
    it as logs.txt; a cached step shows the logs of the run that computed it). A retried step
    shows every attempt's, each after a "--- attempt N ---" line, including what an attempt
    whose worker died had printed by then.

      opsloop pipelines logs RUN_ID

      opsloop pipelines logs RUN_ID train"""
    found = command_client().pipelines.logs(run_id, step)
    if json_:
        print_json([s.model_dump(mode="json") for s in found])
        return
    out = console()
    for s in found:
        whence = ""
        if s.logs_run_id and s.logs_run_id != s.run_id:
            whence = f", cached: logs of run {s.logs_run_id[:8]}"
        out.rule(f"{s.step}{whence}", align="left")
        if s.text:
            out.out(s.text.rstrip("\n"), highlight=False)
        else:
            out.print("[dim](nothing printed)[/]" if s.run_id else "[dim](not run)[/]")


runs_app = command_group(
    "Pipeline runs across experiments. Examples:\n\n"
    "  opsloop pipelines runs list --pipeline training\n\n"
    "  opsloop pipelines runs show RUN_ID   (the DAG, as `opsloop pipelines show`)"
)
pipelines_app.add_typer(runs_app, name="runs")
runs_app.command("show")(show)
pipelines_app.add_typer(triggers_app, name="triggers")


@runs_app.command("list")
def list_runs(
    pipeline: Annotated[str | None, typer.Option(help="Only this pipeline's runs.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The latest pipeline runs: pipeline, run id, state, start and duration."""
    from opsloop.console.output import print_listing
    from opsloop.console.output import when

    found = command_client().pipelines.list_runs(limit, pipeline)
    rows = [
        (r.pipeline, r.run_id, r.status, when(r.start_time),
         f"{(r.end_time - r.start_time) / 1000:.1f} s" if r.end_time else "")
        for r in found
    ]  # fmt: skip
    header = ["pipeline", "run", "status", "started", "took"]
    print_listing([r.model_dump(mode="json") for r in found], header, rows, as_json=json_)


def tune_command(
    target: Annotated[str, typer.Argument(help="MODULE:NAME or FILE.py:NAME of the objective.")],
    space: Annotated[Path, typer.Option(help="YAML/JSON search space: name -> type, range.")],
    trials: Annotated[int, typer.Option(help="How many trials.")] = 20,
    direction: Annotated[str, typer.Option(help="maximize or minimize.")] = "maximize",
    study: Annotated[
        str | None, typer.Option(help="Study name (default: the objective's).")
    ] = None,
    parallel: Annotated[int, typer.Option(help="Trials side by side.")] = 1,
    executor: Annotated[str, typer.Option(help="threads, or ray (a task per trial).")] = "threads",
    pruner: Annotated[str, typer.Option(help="median or none.")] = "median",
    register: Annotated[
        str | None, typer.Option(help="Register the best trial's model under this name.")
    ] = None,
    on_server: Annotated[bool, _ON_SERVER] = False,
) -> None:
    """Tune an objective with Optuna: the study is a run, each trial a nested run.

    The objective is ``def objective(params, trial) -> score`` (or ``(score, model)``); it may
    call ``trial.report(value, step)`` and stop when ``trial.should_prune()``. Example:

      opsloop tune train.py:objective --space space.yaml --trials 30 --register churn
    """
    from opsloop.pipelines.tuning import load_objective
    from opsloop.pipelines.tuning import tune

    search = read_yaml_mapping(space, "space", "map each param to its range")
    with console(stderr=True).status(f"tuning: {trials} trials"):
        if on_server:
            result = _server_client().pipelines.tune(
                target, search, n_trials=trials, direction=direction, study=study,
                parallel=parallel, executor=executor, pruner=pruner, register=register,
            )  # fmt: skip
        else:
            result = tune(
                load_objective(target), search, n_trials=trials, direction=direction, study=study,
                parallel=parallel, executor=executor, pruner=pruner, register=register,
                client=command_client(),
            )  # fmt: skip
    print_tune_result(result)


def print_tune_result(result: Any) -> None:
    """A study's outcome (a ``TuneResult``) for people: the best trial, or a multi-objective
    study's Pareto front as a table (trial, each objective, each param, its run)."""
    from opsloop.console.output import print_table

    out = console()
    best = "" if result.best_score is None else f", best score {result.best_score:.4g}"
    out.print(f"study {result.study}: {result.trials} trials ({result.pruned} pruned)"
              f"{best}  (run {result.run_id})")  # fmt: skip
    if result.front:
        names = list(result.front[0].values)
        params = sorted({k for t in result.front for k in t.params})
        rows = [(str(t.number), *(f"{v:.4g}" for v in t.values.values()),
                 *(_cell(t.params.get(k, "")) for k in params), t.run_id)
                for t in result.front]  # fmt: skip
        print_table(["trial", *names, *params, "run"], rows, title="Pareto front")
    for key, value in result.best_params.items():
        out.print(f"  {key} = {value}")
    for key, value in result.importances.items():
        out.print(f"  importance of {key}: {value:.3f}")
    if result.model_version:
        out.print(f"registered {result.model_version} as candidate")


def _cell(value: Any) -> str:
    """A param in the front's table: floats short, as the objectives' values are."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@pipelines_app.command("resume")
def resume_command(
    run_id: Annotated[str, typer.Argument(help="A pipeline run (usually a FAILED one).")],
    executor: Annotated[
        str | None, typer.Option(help="local, process or ray (default: the run's).")
    ] = None,
    on_server: Annotated[bool, _ON_SERVER] = False,
) -> None:
    """Run a pipeline run again with its params: finished steps come from the cache, so it
    picks up at the step that failed. The new run is tagged opsloop.resumed_from."""
    from opsloop.pipelines.reruns import resume

    if on_server:
        view = _server_client().pipelines.resume(run_id, executor=executor)
        show(view.run_id)
        if view.status != "FINISHED":
            raise typer.Exit(8)
        return
    _print_steps(resume(command_client(), run_id, executor=executor))


def _write_started(path: Path) -> Callable[[str], None]:
    def write(run_id: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(run_id)
        os.replace(tmp, path)  # whole: the parent polls for it

    return write


def reproduce_command(
    run_id: Annotated[str, typer.Argument(help="A finished pipeline run.")],
    executor: Annotated[str | None, typer.Option(help="local, process or ray.")] = None,
    clean_env: Annotated[
        bool,
        typer.Option(
            "--clean-env",
            help="Run in a fresh environment built from the run's package lock (kept under "
            "$OPSLOOP_HOME/envs for the next time), on the run's code: a worktree of its "
            "commit when this repository has it, else its source tree from the store (no "
            "clone needed), with its uncommitted changes applied.",
        ),
    ] = False,
    output: Annotated[
        Path | None, typer.Option(help="Also write the comparison as JSON to this file.")
    ] = None,
    json_: Annotated[bool, typer.Option("--json")] = False,
    on_server: Annotated[bool, _ON_SERVER] = False,
    started_file: Annotated[Path | None, typer.Option(hidden=True)] = None,
    tags_json: Annotated[str | None, typer.Option(hidden=True)] = None,
) -> None:
    """Recompute a pipeline run (no cache, its params and seed) and compare its outputs step by
    step: identical bytes, the same but for identity fields (run ids, timestamps, would-be
    version numbers), or which numbers moved and by how much; and how the code and packages
    differ. Nothing is registered, aliased, promoted, deployed or versioned: those writes are
    held and listed. Exit code 1 when an output differs (--json: the full comparison).

      opsloop runs reproduce RUN_ID

      opsloop runs reproduce RUN_ID --clean-env

      opsloop runs reproduce RUN_ID --clean-env --on-server"""
    from opsloop.pipelines.reruns import reproduce

    doing = "building a clean environment, then recomputing" if clean_env else "recomputing"
    with console(stderr=True).status(f"{doing} every step"):
        if on_server:
            result = _server_client().pipelines.reproduce(
                run_id, executor=executor, clean_env=clean_env
            )
        else:
            # A clean environment's parent process learns the run id from --started-file.
            result = reproduce(
                command_client(), run_id, executor=executor, clean_env=clean_env,
                on_start=_write_started(started_file) if started_file else None,
                tags=json.loads(tags_json) if tags_json else None,
            )  # fmt: skip
    if output is not None:
        output.write_text(result.model_dump_json())
    if json_:
        print_json(result)
    else:
        out = console()
        out.print(f"reproduced {run_id[:8]} as {result.run_id}")
        env = result.environment
        if env:
            built = f"built: {env['linked']} packages linked, {len(env['installed'])} installed"
            how = "reused" if env["reused"] else built
            out.print(f"in a clean environment ({how}): {env['path']}, Python {env['python']}")
            out.print(f"on the code of {env['code']}")
            if env.get("from_source"):
                out.print(f"from the run's code: {', '.join(env['from_source'])}")
        _print_comparison(result)
        then, now = result.commit
        if then != now:
            out.print(f"code: recorded at commit {then or '(none)'}, now {now or '(none)'}")
        if result.changed_packages:
            out.print(f"packages that differ: {', '.join(result.changed_packages[:20])}")
        for ref, (was, now) in result.data_versions.items():
            same = "as recorded" if was == now else f"[red]recorded {was}[/]"
            out.print(f"data: {ref} → {now} ({same})")
    if not result.matches:
        raise typer.Exit(1)


def _print_comparison(result: Any) -> None:
    """One row per step output: the verdict and by how much; then the writes held."""
    from opsloop.console.output import print_table

    rows = []
    for s in result.steps:
        unjudged = next((h["what"] for h in s.held if not h.get("faithful", True)), None)
        for o in s.outputs or [None]:
            verdict = o.verdict if o is not None else s.verdict
            how = o.how if o is not None else ""
            if verdict == "differs" and s.verdict == "held":
                verdict, how = "held", f"not compared: {unjudged} (held)"
            color = _VERDICT_COLORS.get(verdict, "")
            name = o.output if o is not None and o.output != "output" else ""
            rows.append([s.step, name, f"[{color}]{verdict}[/]" if color else verdict, how])
    columns = ["step", "output", "verdict", "how"]
    if not any(row[1] for row in rows):  # one output per step: no column for its name
        columns, rows = columns[:1] + columns[2:], [row[:1] + row[2:] for row in rows]
    print_table(columns, rows, max_width=[None] * (len(columns) - 1) + [52])
    held = [h for s in result.steps for h in s.held] + list(result.held)
    if held:
        out = console()
        out.print(f"held, not made ({len(held)} write(s) outside the reproduction's runs):")
        for h in held[:12]:
            out.print(f"  {h['what']}", highlight=False)
        if len(held) > 12:
            out.print(f"  … and {len(held) - 12} more (--json has them all)")


_VERDICT_COLORS = {"identical": "green", "same": "green", "differs": "red", "held": "yellow",
                   "missing": "red"}  # fmt: skip
