"""``opsloop import mlflow``: the command, its progress bar and its closing tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from typing import Any

import typer

from opsloop.console.commands import JsonOption
from opsloop.console.commands import command_group
from opsloop.console.output import command_client
from opsloop.console.output import console
from opsloop.console.output import print_json
from opsloop.console.output import print_table

import_app = command_group(
    "Bring history from another tool into opsloop. Examples:\n\n"
    "  opsloop import mlflow --tracking-uri sqlite:///mlflow.db\n"
    "  opsloop import mlflow --tracking-uri ./mlruns --experiment churn\n"
    "  opsloop import mlflow --tracking-uri postgresql://mlflow@db/mlflow --artifacts ./artifacts"
)


@import_app.command("mlflow")
def import_mlflow(
    tracking_uri: Annotated[
        str,
        typer.Option(
            "--tracking-uri",
            help="The MLflow store: sqlite:///mlflow.db, postgresql://..., an mlruns folder "
            "(file:///path or a plain path), or a running MLflow server (http://host:5000; "
            "its key in MLFLOW_TRACKING_TOKEN).",
        ),
    ],
    artifacts: Annotated[
        Path | None,
        typer.Option(
            help="A local copy of MLflow's artifact root, when the runs' artifact URIs do not "
            "point at this machine (a moved mlruns folder, a synced bucket, a server's "
            "--artifacts-destination).",
        ),
    ] = None,
    experiment: Annotated[
        str | None,
        typer.Option(help="Only this MLflow experiment (name or id); skips the registry."),
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Copy MLflow experiments, runs (nested, with params, tags, every metric point and their
    artifacts), dataset inputs, registered models, versions and aliases into opsloop.

    Run ids and times are kept, and everything carries the tag opsloop.origin=mlflow. Running it
    again copies nothing new; an interrupted import is completed by the next one. A run id that
    opsloop already holds with other content is reported as a conflict (exit 4), never
    overwritten. What cannot be mapped is listed with the reason.
    """
    from opsloop.app.mlflow_import.copier import open_reader
    from opsloop.app.mlflow_import.copier import run_import
    from opsloop.errors import InvalidInput

    if artifacts is not None and not artifacts.is_dir():
        raise InvalidInput(f"--artifacts: no such folder: {artifacts}")
    reader = open_reader(tracking_uri)
    try:
        with _ProgressBar(quiet=json_) as progress:
            report = run_import(
                command_client(), reader, artifacts=artifacts, experiment=experiment,
                progress=progress,
            )  # fmt: skip
    finally:
        reader.close()
    if json_:
        print_json(report.as_dict())
    else:
        _print_report(report)
    if report.conflicts:
        raise typer.Exit(4)


class _ProgressBar:
    """A rich progress bar over runs and model versions (nothing when printing JSON)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __enter__(self) -> Any:
        self.bar: Any = None
        return None if self.quiet else self.update

    def update(self, what: str, count: int) -> None:
        if what == "total":  # shown from here: an error while opening the store stays one line
            from rich.progress import BarColumn
            from rich.progress import MofNCompleteColumn
            from rich.progress import Progress
            from rich.progress import TimeRemainingColumn

            self.bar = Progress(
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn(), console=console(stderr=True), transient=True,
            )  # fmt: skip
            self.bar.start()
            self.task = self.bar.add_task("importing runs and model versions", total=count)
        else:
            self.bar.advance(self.task, count)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _print_report(report: Any) -> None:
    print_table(["kind", "copied", "already there"], report.rows(), title="imported from MLflow")
    if report.copied_nothing and not report.conflicts:
        console().print("Nothing new to copy: opsloop already holds everything this store has.")
    if report.conflicts:
        rows = [(c.what, c.reason) for c in report.conflicts]
        print_table(["conflict", "why (not overwritten)"], rows, title="conflicts")
    skips = report.grouped_skips()
    if skips:
        print_table(["kind", "not mapped because", "count", "for example"], skips,
                    title="not mapped")  # fmt: skip
