"""``opsloop pipelines triggers ...``: what starts a pipeline by itself (a schedule, a new data
version, an alert, a webhook), and what each fired."""

from __future__ import annotations

from typing import Annotated

import typer

from opsloop.console.commands import command_group
from opsloop.console.output import command_client
from opsloop.console.output import console
from opsloop.console.output import parse_params
from opsloop.errors import InvalidInput

__all__ = ["triggers_app"]

triggers_app = command_group(
    "Start a pipeline by itself: on a cron schedule (UTC), on each new version of a dataset, "
    "on each alert of a monitor, or when its webhook is called; each reason runs it once, "
    "and the run is tagged with it. Examples:\n\n"
    "  opsloop pipelines triggers add nightly --pipeline train.py:training "
    "--cron '0 2 * * *'\n\n"
    "  opsloop pipelines triggers add on-data --pipeline train.py:training --dataset churn "
    "--param-name data\n\n"
    "  opsloop pipelines triggers add on-drift --pipeline train.py:training "
    "--monitor churn-watch\n\n"
    "  opsloop pipelines triggers add hook --pipeline train.py:training --webhook   "
    "(POST /api/triggers/hook/fire)\n\n"
    "The server's scheduler fires them; on the embedded store run `opsloop scheduler`."
)


@triggers_app.command("add")
def add_trigger(
    name: Annotated[str, typer.Argument(help="Trigger name.")],
    pipeline: Annotated[str, typer.Option(help="MODULE:NAME or FILE.py:NAME of a @pipeline.")],
    cron: Annotated[str | None, typer.Option(help="A cron expression, in UTC.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Run on each new version of it.")] = None,
    monitor: Annotated[str | None, typer.Option(help="Run on each alert of this monitor.")] = None,
    rule: Annotated[str | None, typer.Option(help="With --monitor: only this rule's.")] = None,
    webhook: Annotated[bool, typer.Option(help="Run when its webhook is called.")] = False,
    param: Annotated[list[str] | None, typer.Option(help="KEY=VALUE (JSON values).")] = None,
    param_name: Annotated[
        str, typer.Option(help="The param that receives the version or alert id.")
    ] = "data",
) -> None:
    """Add a trigger (exactly one of --cron, --dataset, --monitor, --webhook)."""
    kinds = {"cron": cron, "dataset": dataset, "alert": monitor, "webhook": webhook or None}
    chosen = [k for k, v in kinds.items() if v]
    if len(chosen) != 1:
        raise InvalidInput("give exactly one of --cron, --dataset, --monitor, --webhook")
    params = parse_params(param)
    trigger = command_client().triggers.create(
        name, pipeline, chosen[0], params=params, cron=cron, dataset=dataset, monitor=monitor,
        rule=rule, param=param_name,
    )  # fmt: skip
    console().print(f"trigger {trigger.name}: {trigger.kind} → {trigger.pipeline}")


@triggers_app.command("list")
def list_triggers(json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List triggers."""
    from opsloop.console.output import print_listing

    found = command_client().triggers.list()
    what = {"cron": "cron", "dataset": "dataset", "alert": "monitor", "webhook": "kind"}
    rows = [(t.name, t.kind, getattr(t, what[t.kind]) or "", t.pipeline, t.cursor or "")
            for t in found]  # fmt: skip
    print_listing(found, ["name", "kind", "on", "pipeline", "last fired for"], rows, as_json=json_)


@triggers_app.command("fire")
def fire_trigger(
    name: str,
    key: Annotated[str | None, typer.Option(help="Idempotency key: fires once per key.")] = None,
) -> None:
    """Fire a trigger now and run its pipeline here (embedded store) or on the server."""
    firing = command_client().triggers.fire(name, key=key)
    console().print(f"firing {firing.id[:8]} of {name}: {firing.status}"
                    + (f" (run {firing.run_id})" if firing.run_id else "")
                    + (f" — {firing.message}" if firing.message else ""))  # fmt: skip


@triggers_app.command("firings")
def firings(
    name: str, limit: int = 20, json_: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """What fired a trigger, and the runs it started."""
    from opsloop.console.output import print_listing
    from opsloop.console.output import when

    found = command_client().triggers.firings(name, limit)
    rows = [(f.id[:8], when(f.created_at), f.key, f.status, (f.run_id or "")[:8], f.message or "")
            for f in found]  # fmt: skip
    print_listing(found, ["firing", "at", "key", "status", "run", "message"], rows, as_json=json_)


@triggers_app.command("delete")
def delete_trigger(name: str) -> None:
    """Delete a trigger and its history of firings."""
    command_client().triggers.delete(name)
    console().print(f"deleted trigger {name}")
