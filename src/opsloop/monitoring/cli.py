"""``opsloop monitors``, ``opsloop alerts`` and ``opsloop loop``."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated
from typing import Any

import typer

from opsloop.console.commands import JsonOption
from opsloop.console.commands import command_group
from opsloop.console.files import read_yaml_mapping
from opsloop.console.output import command_client
from opsloop.console.output import console
from opsloop.console.output import for_people
from opsloop.console.output import print_listing
from opsloop.console.output import print_table
from opsloop.console.output import print_view
from opsloop.console.output import when

monitors_app = command_group(
    "Monitors on deployments: data and prediction drift against a reference data version, "
    "quality (measured from joined labels, estimated by CBPE without them), latency and "
    "errors, over windows of the prediction log. Examples:\n\n"
    "  opsloop monitors create churn-drift --deployment churn --reference churn@3 "
    "--target churned\n\n"
    "  opsloop monitors create churn-drift --deployment churn --reference churn@3 "
    "--spec monitor.yaml    (alert rules, channels, retraining)\n\n"
    "  opsloop monitors check churn-drift ; opsloop monitors runs churn-drift\n\n"
    "  opsloop monitors references churn-drift ; opsloop monitors revert churn-drift"
)
alerts_app = command_group(
    "Alerts raised by monitors: list, acknowledge, resolve. Example:\n\n"
    "  opsloop alerts list --status open ; opsloop alerts ack 1a2b3c4d"
)
loop_app = command_group(
    "The closed loop: drift -> alert -> retrain -> gate -> canary -> promote or roll back.\n\n"
    "  opsloop loop status ; opsloop loop runs --deployment churn"
)


@monitors_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Monitor name.")],
    deployment: Annotated[str, typer.Option(help="The deployment to watch.")],
    reference: Annotated[str, typer.Option(help="Reference data version, NAME@N.")],
    target: Annotated[str | None, typer.Option(help="The label column of the reference.")] = None,
    spec: Annotated[
        Path | None, typer.Option(help="YAML with window, rules, channels, retrain, ...")
    ] = None,
    window_by: Annotated[str | None, typer.Option(help="Window by 'count' or 'time'.")] = None,
    window_size: Annotated[
        int | None, typer.Option(help="Requests (by count) or seconds (by time).")
    ] = None,
    window_mode: Annotated[str | None, typer.Option(help="'sliding' or 'tumbling'.")] = None,
    every: Annotated[float | None, typer.Option(help="Seconds between scheduled checks.")] = None,
    json_: JsonOption = False,
) -> None:
    """Create a monitor: profile the reference once, then check windows of live traffic."""
    settings: dict[str, Any] = {}
    if spec is not None:
        settings = read_yaml_mapping(spec, "spec", "hold a mapping of monitor settings")
    window = dict(settings.get("window") or {})
    for key, value in (("by", window_by), ("size", window_size), ("mode", window_mode)):
        if value is not None:
            window[key] = value
    if window:
        settings["window"] = window
    if target is not None:
        settings["target"] = target
    if every is not None:
        settings["every_seconds"] = every
    with console(stderr=True).status("profiling the reference"):
        monitor = command_client().monitors.create(name, deployment, reference, **settings)
    print_view(monitor, _print_monitor, as_json=json_)


def _print_monitor(monitor: Any) -> None:
    console().print(
        f"monitor {monitor.name} watches {monitor.deployment} against {monitor.reference}: "
        f"{len(monitor.columns)} columns, rules: {', '.join(r.name for r in monitor.spec.rules)}"
    )


@monitors_app.command("list")
def list_monitors(
    deployment: Annotated[str | None, typer.Option(help="Only this deployment's.")] = None,
    json_: JsonOption = False,
) -> None:
    """List monitors."""
    monitors = command_client().monitors.list(deployment)
    rows = [(m.name, m.deployment, m.reference, f"{m.spec.window.by} {m.spec.window.size}",
             f"{m.spec.every_seconds:g}s", ", ".join(r.name for r in m.spec.rules))
            for m in monitors]  # fmt: skip
    header = ["name", "deployment", "reference", "window", "every", "rules"]
    print_listing(monitors, header, rows, as_json=json_)


@monitors_app.command("show")
def show(name: str, json_: JsonOption = False) -> None:
    """A monitor's settings and its reference baseline."""
    monitor = command_client().monitors.get(name)
    print_view(monitor, lambda m: console().print(m.model_dump_json(indent=2)), as_json=json_)


@monitors_app.command("delete")
def delete(name: str) -> None:
    """Delete a monitor with its runs and alerts."""
    command_client().monitors.delete(name)
    console().print(f"deleted monitor {name}")


@monitors_app.command("references")
def references(name: str, json_: JsonOption = False) -> None:
    """A monitor's reference history, newest (current) first: who re-baselined it, on what,
    when and why (the retraining loop does after each promotion)."""
    found = command_client().monitors.references(name)
    rows = [(("* " if r.current else "  ") + str(r.number), r.action, r.reference, r.model,
             r.metrics.get("accuracy"), when(r.created_at), r.created_by, r.reason)
            for r in found]  # fmt: skip
    header = ["entry", "action", "reference", "model", "accuracy", "at", "by", "why"]
    print_listing(found, header, rows, as_json=json_)


@monitors_app.command("rebaseline")
def rebaseline(
    name: str,
    reference: Annotated[str, typer.Option(help="The new reference data version, NAME@N.")],
    reason: Annotated[str | None, typer.Option(help="Why, kept in the history.")] = None,
    json_: JsonOption = False,
) -> None:
    """Compare the monitor's traffic to another data version from now on (reversible)."""
    with console(stderr=True).status("profiling the reference"):
        entry = command_client().monitors.rebaseline(name, reference, reason)
    line = (
        f"{name} re-baselined on {entry.reference} with {entry.model} (entry {entry.number}; "
        f"undo: opsloop monitors revert {name})"
    )
    print_view(entry, lambda _: console().print(line), as_json=json_)


@monitors_app.command("revert")
def revert(
    name: str,
    to: Annotated[
        int | None, typer.Option(help="The history entry (default: the one before the current).")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why, kept in the history.")] = None,
    json_: JsonOption = False,
) -> None:
    """Go back to an earlier reference of the monitor (a new history entry)."""
    entry = command_client().monitors.revert(name, to, reason)
    line = f"{name} is back on {entry.reference} with {entry.model} (entry {entry.number})"
    print_view(entry, lambda _: console().print(line), as_json=json_)


def _print_run(run: Any) -> None:
    console().print(f"check {run.id[:8] or '-'} of {run.monitor}: {run.status}, {run.rows} rows")
    if run.message:
        console().print(f"  {run.message}")
    rows = list(run.metrics.items())
    if rows:
        print_table(["metric", "value"], rows)
    if run.report:
        drifted = run.report.get("drifted_columns") or []
        console().print(f"drifted columns: {', '.join(drifted) or 'none'}")
    for alert_id in run.alerts:
        console().print(f"[red]alert opened[/red] {alert_id[:8]}")
    for loop_id in run.loops:
        console().print(f"retraining started: loop {loop_id[:8]} (opsloop loop status)")


@monitors_app.command("check")
def check(
    name: str,
    html: Annotated[Path | None, typer.Option(help="Write the drift report as HTML.")] = None,
    json_: JsonOption = False,
) -> None:
    """Check the monitor's window now (alerts open and retraining may start)."""
    from opsloop.config import load_settings
    from opsloop.monitoring.measure_apart import start_early

    # the window's half of the check starts in a second process before the client is built
    start_early(load_settings())
    # The check imports the store's and DuckDB's modules and reads the window's rows, all of
    # which live until it ends: the cyclic collector went over them again at each collection
    # and found next to nothing (2.6% of the command's instructions). It is paused for the check,
    # as ``opsloop serve`` pauses it for its start; the rows are freed by reference counts.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with console(stderr=True).status("checking"):
            run = command_client().monitors.check(name)
    finally:
        if collecting:
            gc.enable()
    if html is not None and run.report:
        from opsloop.monitoring.report_html import render

        html.write_text(render(run.report, title=f"{name}: drift"), encoding="utf-8")
    print_view(run, _print_run, as_json=json_)


@monitors_app.command("runs")
def runs(name: str, limit: int = 20, json_: JsonOption = False) -> None:
    """A monitor's latest checks."""
    found = command_client().monitors.runs(name, limit)
    rows = [(r.id[:8], when(r.started_at), r.status, r.rows, r.metrics.get("drift_share"),
             r.metrics.get("accuracy") or r.metrics.get("cbpe_accuracy"), r.message or "")
            for r in found]  # fmt: skip
    header = ["run", "at", "status", "rows", "drift share", "accuracy", "message"]
    print_listing(found, header, rows, as_json=json_)


@monitors_app.command("report")
def report(
    run_id: str,
    html: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
) -> None:
    """One check's drift report (JSON, or HTML with --html)."""
    import json

    from opsloop.errors import NotFound

    run = command_client().monitors.run(run_id)
    if not run.report:
        raise NotFound(f"monitor run {run_id} has no drift report ({run.message})")
    if html is None:
        typer.echo(json.dumps(run.report, indent=2))
        return
    from opsloop.monitoring.report_html import render

    html.write_text(render(run.report, title=f"{run.monitor}: drift"), encoding="utf-8")
    console().print(f"wrote {html}")


@alerts_app.command("list")
def list_alerts(
    status: Annotated[
        str | None, typer.Option(help="open, firing, acknowledged or resolved.")
    ] = None,
    deployment: Annotated[str | None, typer.Option()] = None,
    monitor: Annotated[str | None, typer.Option()] = None,
    json_: JsonOption = False,
) -> None:
    """List alerts, newest first."""
    found = command_client().monitors.alerts(status=status, deployment=deployment, monitor=monitor)
    rows = [(a.id[:8], a.severity, a.status + (f": {a.resolution}" if a.resolution else ""),
             a.rule, a.monitor, a.count, when(a.last_at),
             ", ".join(f"{k}: {v['status']}" for k, v in a.deliveries.items()), a.message)
            for a in found]  # fmt: skip
    header = ["id", "severity", "status", "rule", "monitor", "seen", "last", "delivered", "message"]
    print_listing(found, header, rows, as_json=json_)


@alerts_app.command("ack")
def ack(alert_id: str) -> None:
    """Acknowledge an alert: someone is on it (it stays open and deduplicates)."""
    alert = command_client().monitors.acknowledge(alert_id)
    console().print(f"alert {alert.id[:8]} acknowledged by {alert.acknowledged_by}")


@alerts_app.command("resolve")
def resolve(alert_id: str) -> None:
    """Resolve an alert."""
    alert = command_client().monitors.resolve(alert_id)
    console().print(f"alert {alert.id[:8]} resolved by {alert.resolved_by}")


def _print_timeline(events: list[dict[str, Any]]) -> None:
    if events:
        console().print("  incident:")
    for event in events:
        console().print(f"    {when(event['at'])} {event['event']}: {event['message']}")


@loop_app.command("status")
def status(
    deployment: Annotated[str | None, typer.Argument(help="One deployment (default: all).")] = None,
    json_: JsonOption = False,
) -> None:
    """Where each deployment's loop stands, and why."""
    print_view(command_client().monitors.loop_status(deployment), _print_loops, as_json=json_)


def _print_loops(found: list[dict[str, Any]]) -> None:
    if not found:
        console().print("no monitors yet: opsloop monitors create --help")
    for item in found:
        console().print(f"[bold]{item['deployment']}[/bold] ({item['monitor']}): {item['stage']}")
        last = item["last_check"]
        if last:
            metrics = last["metrics"]
            console().print(
                f"  last check {when(last['at'])}: {last['status']}, {last['rows']} rows, "
                f"drift share {for_people(metrics.get('drift_share'))}"
                + (f" — {last['message']}" if last["message"] else "")
            )
        for alert in item["open_alerts"]:
            console().print(f"  alert {alert['id'][:8]} [{alert['severity']}] {alert['message']}")
        loop = item["loop"]
        if loop:
            console().print(f"  loop {loop['id'][:8]}: {loop['stage']} — {loop['message']}")
            _print_timeline(item.get("timeline") or [])


@loop_app.command("runs")
def loop_runs(
    deployment: Annotated[str | None, typer.Option()] = None,
    limit: int = 20,
    json_: JsonOption = False,
) -> None:
    """Past turns of the loop."""
    found = command_client().monitors.loop_runs(deployment, limit)
    rows = [(r.id[:8], r.deployment, r.stage, r.candidate, (r.pipeline_run_id or "")[:8],
             when(r.created_at), r.message or "") for r in found]  # fmt: skip
    header = ["loop", "deployment", "stage", "candidate", "pipeline run", "at", "message"]
    print_listing(found, header, rows, as_json=json_)
