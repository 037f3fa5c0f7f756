"""``opsloop experiments ...`` and ``opsloop runs ...``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated
from typing import Any

import typer

from opsloop.console.commands import JsonOption
from opsloop.console.commands import command_group
from opsloop.console.commands import every_item
from opsloop.console.output import command_client
from opsloop.console.output import console
from opsloop.console.output import for_people
from opsloop.console.output import parse_tags
from opsloop.console.output import print_json
from opsloop.console.output import print_listing
from opsloop.console.output import print_outcome
from opsloop.console.output import print_table
from opsloop.console.output import when

if TYPE_CHECKING:
    from opsloop.tracking.entities import Run

experiments_app = command_group("Create, list, rename, delete and restore experiments.")
runs_app = command_group(
    "List, search, inspect, compare, delete and restore runs.\n\n"
    "Without -e, `runs list` shows the runs of every experiment, newest first; filters use "
    "the search language of search_runs. Examples:\n\n"
    "  opsloop runs list\n"
    "  opsloop runs list -e churn -f \"metrics.f1 > 0.8 and params.model = 'rf'\" "
    "-o 'metrics.f1 DESC'\n"
    "  opsloop runs show 1a2b3c4d"
)

RunIdArg = Annotated[
    str, typer.Argument(help="Run id (32 hex characters, or a unique prefix of at least 6).")
]
RunIdsArg = Annotated[list[str], typer.Argument(help="Run ids.")]


def _duration(run: Run) -> str:
    if run.info.end_time is None:
        return ""
    return f"{(run.info.end_time - run.info.start_time) / 1000:.1f}s"


# -- experiments ---------------------------------------------------------------------------------
@experiments_app.command("create")
def create_experiment(
    name: str,
    description: Annotated[str | None, typer.Option(help="What the experiment is for.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable.")] = None,
    json_: JsonOption = False,
) -> None:
    """Create an experiment (fails if the name is taken)."""
    experiment = command_client().create_experiment(
        name, description=description, tags=parse_tags(tag)
    )
    line = f"created experiment {experiment.name!r} ({experiment.experiment_id})"
    print_outcome(experiment, line, as_json=json_)


@experiments_app.command("list")
def list_experiments(
    view: Annotated[str, typer.Option(help="active, deleted or all.")] = "active",
    json_: JsonOption = False,
) -> None:
    """List experiments."""
    client = command_client()
    items = every_item(lambda token: client.list_experiments(view=view, page_token=token))
    rows = [(e.name, e.experiment_id, e.lifecycle_stage, when(e.created_at)) for e in items]
    print_listing(items, ["name", "id", "stage", "created"], rows, as_json=json_)


@experiments_app.command("show")
def show_experiment(name_or_id: str, json_: JsonOption = False) -> None:
    """Show one experiment (by name or id)."""
    experiment = command_client().resolve_experiment(name_or_id)
    rows = [
        ("name", experiment.name),
        ("id", experiment.experiment_id),
        ("stage", experiment.lifecycle_stage),
        ("description", experiment.description),
        ("created", when(experiment.created_at)),
        *((f"tags.{k}", v) for k, v in experiment.tags.items()),
    ]
    print_listing(experiment, ["field", "value"], rows, as_json=json_)


@experiments_app.command("rename")
def rename_experiment(name_or_id: str, new_name: str) -> None:
    """Rename an experiment."""
    client = command_client()
    experiment = client.rename_experiment(
        client.resolve_experiment(name_or_id).experiment_id, new_name
    )
    typer.echo(f"renamed to {experiment.name!r}")


@experiments_app.command("delete")
def delete_experiment(name_or_id: str) -> None:
    """Delete an experiment (restorable with `opsloop experiments restore`)."""
    client = command_client()
    experiment = client.delete_experiment(client.resolve_experiment(name_or_id).experiment_id)
    typer.echo(f"deleted experiment {experiment.name!r}")


@experiments_app.command("restore")
def restore_experiment(name_or_id: str) -> None:
    """Restore a deleted experiment."""
    client = command_client()
    experiment = client.restore_experiment(client.resolve_experiment(name_or_id).experiment_id)
    typer.echo(f"restored experiment {experiment.name!r}")


# -- runs ----------------------------------------------------------------------------------------
@runs_app.command("list")
def list_runs(
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            help="Experiment name or id; repeatable. Default: every experiment.",
        ),
    ] = None,
    filter_: Annotated[
        str | None,
        typer.Option("--filter", "-f", help="e.g. \"metrics.acc > 0.9 and params.lr = '0.01'\""),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", "-o", help="e.g. 'metrics.acc DESC'; repeatable."),
    ] = None,
    max_results: Annotated[int, typer.Option("--max-results", "-n", help="Page size.")] = 100,
    page_token: Annotated[
        str | None, typer.Option(help="next_page_token from a previous --json listing.")
    ] = None,
    view: Annotated[str, typer.Option(help="active, deleted or all.")] = "active",
    json_: JsonOption = False,
) -> None:
    """List and search runs, newest first: those of every experiment unless -e names some.

    The table shows short run ids (any unique prefix of 6+ characters is accepted back), and
    as many params.* and metrics.* columns as the terminal's width allows (those the filter
    or order mention first); --json has every value with every digit."""
    client = command_client()
    page = client.search_runs(
        experiment or None,
        filter_,
        order_by=order_by,
        max_results=max_results,
        page_token=page_token,
        view=view,
    )
    if json_:
        print_json(page)
        return
    names = None
    if len(experiment or []) != 1:
        listed = every_item(lambda token: client.list_experiments(view="all", page_token=token))
        names = {e.experiment_id: e.name for e in listed}
    _print_runs(page.items, " ".join([filter_ or "", *(order_by or [])]), names)
    if page.next_page_token:
        typer.echo(f"more runs: --page-token {page.next_page_token}", err=True)


# The widest a listing's columns get (longer values end in "…"); params and metrics: _CELL.
_CAPS = {"name": 16, "experiment": 12}
_CELL = 20


def _print_runs(runs: list[Run], wanted: str, experiments: dict[str, str] | None) -> None:
    """One line per run at the terminal's width: the base columns, then the params.* and
    metrics.* columns that fit (those the filter or order mention first, then metrics, then
    params), the last one cut narrower if its header still fits. How long a run took is under
    `runs show`: at 100 columns a metric is worth more."""
    base: list[tuple[str, list[Any]]] = [
        ("run_id", [r.info.run_id[:8] for r in runs]),
        ("name", [r.info.run_name for r in runs]),
    ]
    if experiments is not None:
        base.append(("experiment", [experiments.get(r.info.experiment_id) for r in runs]))
    base += [
        ("status", [r.info.status.value for r in runs]),
        ("started", [when(r.info.start_time)[5:16] for r in runs]),  # MM-DD HH:MM (UTC)
    ]
    metrics = sorted({k for r in runs for k in r.data.metrics})
    params = sorted({k for r in runs for k in r.data.params})
    extra: list[tuple[str, list[Any]]] = [
        *((f"metrics.{k}", [r.data.metrics.get(k) for r in runs]) for k in metrics),
        *((f"params.{k}", [r.data.params.get(k) for r in runs]) for k in params),
    ]
    extra.sort(key=lambda column: column[0].partition(".")[2] not in wanted)
    room = console().width + 3 - sum(_width(column) for column in base)  # no outer edges
    shown: list[tuple[str, list[Any], int]] = []
    for name, values in extra:
        width = min(_width((name, values)), room)
        if width >= min(len(name), _CELL) + 3:  # its header fits
            shown.append((name, values, width - 3))
            room -= width
    shown.sort(key=lambda column: (not column[0].startswith("params."), column[0]))
    columns = [(name, values, _CAPS.get(name, _CELL)) for name, values in base] + shown
    print_table(
        [name for name, _, _ in columns],
        list(zip(*(values for _, values, _ in columns), strict=True)),
        cut=True,
        max_width=[width for _, _, width in columns],
    )
    if len(shown) < len(extra):
        typer.echo(
            f"{len(extra) - len(shown)} more params/metrics columns: see a wider terminal, "
            "opsloop runs show RUN_ID or --json",
            err=True,
        )


def _width(column: tuple[str, list[Any]]) -> int:
    """Characters a column takes in a listing: its widest cell (capped), 2 of padding and 1
    between columns."""
    name, values = column
    widest = max([len(name), *(len(for_people(v)) for v in values)])
    return min(widest, _CAPS.get(name, _CELL)) + 3


@runs_app.command("show")
def show_run(run_id: RunIdArg, json_: JsonOption = False) -> None:
    """Show a run: info, params, latest metrics, tags (system tags under `opsloop runs env`)."""
    run = command_client().get_run(run_id)
    info = run.info
    rows: list[tuple[str, Any]] = [
        ("run_id", info.run_id),
        ("name", info.run_name),
        ("experiment_id", info.experiment_id),
        ("status", info.status.value),
        ("started", when(info.start_time)),
        ("ended", when(info.end_time)),
        ("duration", _duration(run)),
        ("parent_run_id", info.parent_run_id),
        ("user", info.user_id),
        ("stage", info.lifecycle_stage),
        *((f"params.{k}", v) for k, v in sorted(run.data.params.items())),
        *((f"metrics.{k}", v) for k, v in sorted(run.data.metrics.items())),
        *(
            (f"tags.{k}", v)
            for k, v in sorted(run.data.tags.items())
            if not k.startswith("opsloop.")
        ),
    ]
    print_listing(run, ["field", "value"], rows, as_json=json_)


@runs_app.command("compare")
def compare_runs(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
    diff_only: Annotated[
        bool, typer.Option("--diff-only", help="Only rows whose values differ.")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Params and metrics of several runs side by side; differing rows are highlighted."""
    from opsloop.errors import InvalidInput

    if len(run_ids) < 2:
        raise InvalidInput("compare needs at least two run ids")
    client = command_client()
    runs = [client.get_run(r) for r in run_ids]
    rows: list[tuple[str, list[Any]]] = []
    for kind in ("params", "metrics"):
        keys = sorted({k for r in runs for k in getattr(r.data, kind)})
        rows.extend((f"{kind}.{k}", [getattr(r.data, kind).get(k) for r in runs]) for k in keys)
    if json_:
        print_json(
            {"runs": [r.info.run_id for r in runs], "rows": {name: values for name, values in rows}}
        )
        return
    table_rows = []
    for name, values in rows:
        differs = len({repr(v) for v in values}) > 1
        if diff_only and not differs:
            continue
        cells = [for_people(v) for v in values]
        if differs:
            cells = [f"[bold yellow]{c}[/]" for c in cells]
        table_rows.append((name, *cells))
    print_table(["", *(f"{r.info.run_name}\n{r.info.run_id[:8]}" for r in runs)], table_rows)


@runs_app.command("delete")
def delete_runs(run_ids: RunIdsArg) -> None:
    """Delete runs (restorable with `opsloop runs restore`)."""
    _each_run(run_ids, command_client().delete_run, "deleted")


@runs_app.command("restore")
def restore_runs(run_ids: RunIdsArg) -> None:
    """Restore deleted runs."""
    _each_run(run_ids, command_client().restore_run, "restored")


def _each_run(run_ids: list[str], act: Callable[[str], object], done: str) -> None:
    for run_id in run_ids:
        act(run_id)
        typer.echo(f"{done} run {run_id}")


@runs_app.command("env")
def run_env(
    run_id: RunIdArg,
    lock: Annotated[bool, typer.Option("--lock", help="Also print the package lock file.")] = False,
    json_: JsonOption = False,
) -> None:
    """What it takes to reproduce a run: git commit and diff, command, Python, packages, seed,
    host."""
    from opsloop.tracking.reproducibility import ENV_TAG_PREFIX
    from opsloop.tracking.reproducibility import LOCK_ARTIFACT

    client = command_client()
    run = client.get_run(run_id)
    env = {
        k[len(ENV_TAG_PREFIX) :]: v
        for k, v in sorted(run.data.tags.items())
        if k.startswith(ENV_TAG_PREFIX)
    }
    lock_text = client.read_artifact(run_id, LOCK_ARTIFACT).decode() if lock else None
    if json_:
        print_json({"run_id": run_id, "environment": env, "lock": lock_text})
        return
    print_table(["", "value"], list(env.items()), title=f"environment of run {run_id}")
    if lock_text is not None:
        typer.echo(lock_text)


@runs_app.command("source")
def restore_source(
    run_id: RunIdArg,
    dst: Annotated[Path, typer.Argument(help="An empty (or new) folder to write the code to.")],
) -> None:
    """Write the code a run ran into a folder: its commit's source tree from the store, with
    its uncommitted changes applied. Needs no clone of the repository.

      opsloop runs source RUN_ID ./code-of-run"""
    tree = command_client().restore_source(run_id, dst)
    typer.echo(f"the code of run {run_id} is in {tree}")


@runs_app.command("metric")
def metric_history(
    run_id: RunIdArg,
    key: Annotated[str, typer.Argument(help="Metric key.")],
    max_points: Annotated[
        int | None,
        typer.Option(help="Thin a long history to about this many points (min/max kept)."),
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Every logged point of one metric."""
    history = command_client().get_metric_history(run_id, key, max_points)
    points = zip(history.steps, history.values, history.timestamps, strict=True)
    rows = [(s, v, when(t)) for s, v, t in points]
    print_listing(history, ["step", "value", "time"], rows, as_json=json_)


@runs_app.command("artifacts")
def list_artifacts(
    run_id: RunIdArg,
    path: Annotated[str | None, typer.Argument(help="Folder inside the run.")] = None,
    json_: JsonOption = False,
) -> None:
    """List a run's artifacts."""
    items = command_client().list_artifacts(run_id, path)
    rows = [(a.path, a.size, a.digest[:16]) for a in items]
    print_listing(items, ["path", "size", "digest"], rows, as_json=json_)


@runs_app.command("download")
def download_artifacts(
    run_id: RunIdArg,
    path: Annotated[str, typer.Argument(help="Artifact file or folder ('' for all).")] = "",
    dst: Annotated[Path, typer.Option("--dst", "-d", help="Local folder.")] = Path("."),
) -> None:
    """Download a run's artifacts."""
    local = command_client().download_artifacts(run_id, path, dst)
    typer.echo(str(local))
