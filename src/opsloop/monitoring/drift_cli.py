"""``opsloop drift REFERENCE CURRENT``: the ad hoc comparison most people meet drift tools by."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from typing import Any

import typer

from opsloop.console.output import console
from opsloop.console.output import print_table

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


def _value(c: Any, kind: str) -> str:
    return "" if c.statistic is None or c.score_type != kind else f"{c.statistic:.4g}"


def _row(c: Any) -> tuple[str, ...]:
    verdict = "[dim]skipped[/dim]" if c.skipped else _VERDICTS[c.drift_detected]
    adjusted = "" if c.p_value_adjusted is None else f" (adjusted {c.p_value_adjusted:.4g})"
    return (
        c.column, c.kind, c.stattest or "-", _value(c, "p_value") + adjusted,
        _value(c, "distance"), "" if c.threshold is None else f"{c.threshold:g}", verdict,
        c.note or "",
    )  # fmt: skip


def _described(c: Any) -> str:
    """``churned: jensenshannon distance 0.12 (drift at >= 0.1): DRIFT``, one line."""
    if c.statistic is None:
        return f"{c.column}: no verdict ({c.note})"
    what = "p-value" if c.score_type == "p_value" else "distance"
    rule = f"< {c.threshold:g}" if c.score_type == "p_value" else f">= {c.threshold:g}"
    outcome = "DRIFT" if c.drift_detected else "no drift"
    return f"{c.column}: {c.stattest} {what} {c.statistic:.4g} (drift at {rule}): {outcome}"


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
    target: Annotated[
        str | None,
        typer.Option(help="The target column: its drift is reported on its own line."),
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", "-x", help="Leave this column out.")
    ] = None,
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
    rows; normed Wasserstein / Jensen-Shannon above), unless --stattest says otherwise. A test
    gives a p-value (drift below the threshold) or a distance (drift at or above it).

    Time columns and identifiers (nearly all values distinct, e-mail addresses) are skipped,
    with the reason; --column-stattest COLUMN=TEST tests one anyway.

    Examples:

      opsloop drift train.parquet last_week.parquet

      opsloop drift churn@3 churn@4 --json

      opsloop drift ref.csv cur.csv --html drift.html --correction holm

      opsloop drift ref.csv cur.csv --target churned --exclude customer_name
    """
    from opsloop.monitoring.drift import drift

    with console(stderr=True).status("comparing distributions"):
        report = drift(
            reference, current, columns=columns or None, stattest=stattest,
            column_stattests=_pairs(column_stattest, "--column-stattest"), threshold=threshold,
            correction=correction, drift_share=drift_share,
            column_types=dict.fromkeys(categorical or [], "categorical"),  # type: ignore[arg-type]
            target=target, exclude=exclude or None,
        )  # fmt: skip
    if html is not None:
        report.to_html(html, title=f"Drift: {current} vs {reference}")
    if json_out:
        typer.echo(report.to_json(plots=False))
    else:
        rows = [_row(c) for c in report.columns]
        print_table(
            ["column", "kind", "test", "p-value", "distance", "threshold", "verdict", "note"],
            rows,
        )
        verdict = {None: "no verdict (nothing could be tested)", True: "DRIFT", False: "no drift"}
        skipped = f"; {len(report.skipped)} skipped" if report.skipped else ""
        console().print(
            f"dataset: {verdict[report.dataset_drift]}: {len(report.drifted_columns)} of "
            f"{len(report.tested)} columns drifted (drift at {report.drift_share:.0%}){skipped}"
        )
        if report.target is not None:
            console().print(f"target {_described(report.target)}")
        if html is not None:
            console().print(f"HTML report: {html}")
    if fail_on_drift and report.dataset_drift:
        raise typer.Exit(1)
