"""``opsloop scheduler``: the embedded store's scheduler in the foreground."""

from __future__ import annotations

import time
from typing import Annotated
from typing import Any

import typer

from opsloop.console.output import command_client
from opsloop.console.output import console
from opsloop.console.output import when


def scheduler(
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between passes.")] = 5.0,
    once: Annotated[
        bool, typer.Option(help="One pass now, waiting for loop runs, then exit (whoever leads).")
    ] = False,
) -> None:
    """Run what opsloop does by itself: due monitor checks, alert deliveries, pipeline
    triggers (cron, new data versions, alerts, webhooks) and retraining loops with their
    rollouts.

    A server does this by itself; this command is the scheduler of the embedded store. Start it
    on several machines or next to servers on one store and only one runs the passes: the
    holder of the store's "scheduler" lease; if it dies, another takes over within 4/3 of the
    lease (leader_lease_seconds, 10 s by default: within 15 s).
    """
    from opsloop.store.leadership import Leadership

    client = command_client()
    runner = client.scheduler(interval=interval)
    lease_s = client.settings.leader_lease_seconds
    leadership = None if once else Leadership(runner.store, "scheduler", ttl_s=lease_s).start()
    leading: bool | None = None
    try:
        while True:
            if leadership is None or leadership.claim_tick() is not None:
                leading = _say_leads(leadership, leading, True)
                for run in runner.tick(wait=once):
                    console().print(
                        f"{when(run.started_at)} {run.monitor}: {run.status} ({run.rows} rows)"
                    )
            else:
                leading = _say_leads(leadership, leading, False)
                runner.close_orphans()  # this host's dead pipeline runs: every scheduler looks
            if once:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return
    finally:
        runner.stop()
        if leadership is not None:
            leadership.stop()  # lets the lease go: another scheduler takes over at once


def _say_leads(leadership: Any, was: bool | None, leads: bool) -> bool:
    """Say when this scheduler starts or stops leading."""
    if leadership is not None and was is not leads:
        if leads:
            console().print(f"leading: this scheduler runs the passes ({leadership.holder})")
        else:
            held = leadership.status()["held_by"]
            if held and held != leadership.holder:
                console().print(f"standing by: {held} runs the passes")
            else:
                console().print("standing by: waiting for the store's 'scheduler' lease")
    return leads
