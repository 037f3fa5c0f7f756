"""``opsloop drift REFERENCE CURRENT``: the ad hoc comparison most people meet drift tools by."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opsloop.console.output import console, print_table

_VERDICTS = {True: "[red]DRIFT[/red]", False: "ok", None: "[dim]no verdict[/dim]"}


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    from opsloop.errors import InvalidInput

    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise InvalidInput(f"{what} {item!r}: write COLUMN=VALUE")
        out[key] = value
    return out


def drift_command(
    reference: Annotated[
        str, typer.Argument(help="Reference: a CSV/Parquet/JSONL file or NAME@N.")
    ],
    current: Annotated[str, typer.Argument(help="Current data: a file or a data version.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write an HTML report with a plot per column."),
    ] = None,
    columns: Annotated[
        list[str] | None, typer.Option("--column", "-c", help="Test only these columns.")
    ] = None,
    stattest: Annotated[
        str | None,
        typer.Option(
            help="One test for all columns: ks, chisquare, z, wasserstein, jensenshannon, psi."
        ),
    ] = None,
    column_stattest: Annotated[
        list[str] | None, typer.Option("--column-stattest", help="COLUMN=TEST for one column.")
    ] = None,
    threshold: Annotated[float | None, typer.Option(help="One threshold for all columns.")] = None,
    categorical: Annotated[
        list[str] | None, typer.Option(help="Treat this numeric column as categorical.")
    ] = None,
    correction: Annotated[
        str | None, typer.Option(help="Multiple-testing correction: bonferroni, holm, fdr_bh.")
    ] = None,
    drift_share: Annotated[
        float, typer.Option(help="Share of drifted columns at which the dataset drifts.")
    ] = 0.5,
    fail_on_drift: Annotated[
        bool, typer.Option(help="Exit 1 when the dataset drifts (for CI jobs).")
    ] = False,
) -> None:
    """Compare CURRENT with REFERENCE column by column and say which columns drifted.

    Each column gets Evidently's default test (KS / chi-square / Z on references up to 1,000
    rows; normed Wasserstein / Jensen-Shannon above), unless --stattest says otherwise.

    Examples:

      opsloop drift train.parquet last_week.parquet

      opsloop drift churn@3 churn@4 --json

      opsloop drift ref.csv cur.csv --html drift.html --correction holm
    """
    from opsloop.monitoring.drift import drift

    with console(stderr=True).status("comparing distributions"):
        report = drift(
            reference, current, columns=columns or None, stattest=stattest,
            column_stattests=_pairs(column_stattest, "--column-stattest"), threshold=threshold,
            correction=correction, drift_share=drift_share,
            column_types=dict.fromkeys(categorical or [], "categorical"),  # type: ignore[arg-type]
        )  # fmt: skip
    if html is not None:
        report.to_html(html, title=f"Drift: {current} vs {reference}")
    if json_out:
        typer.echo(report.to_json(plots=False))
    else:
        rows = [
            (
                c.column, c.kind, c.stattest or "-",
                "" if c.statistic is None else f"{c.statistic:.4g}",
                "" if c.threshold is None else f"{c.threshold:g}",
                _VERDICTS[c.drift_detected],
                c.note or "",
            )
            for c in report.columns
        ]  # fmt: skip
        print_table(["column", "kind", "test", "statistic", "threshold", "verdict", "note"], rows)
        verdict = {None: "no verdict (nothing could be tested)", True: "DRIFT", False: "no drift"}
        console().print(
            f"dataset: {verdict[report.dataset_drift]}: {len(report.drifted_columns)} of "
            f"{len(report.tested)} columns drifted (drift at {report.drift_share:.0%})"
        )
        if html is not None:
            console().print(f"HTML report: {html}")
    if fail_on_drift and report.dataset_drift:
        raise typer.Exit(1)
