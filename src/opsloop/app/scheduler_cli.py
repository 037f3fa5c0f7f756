"""``opsloop scheduler``: the embedded store's scheduler in the foreground."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from opsloop.console.output import command_client, console, when


def scheduler(
    interval: Annotated[float, typer.Option(help="Seconds between passes.")] = 5.0,
    once: Annotated[bool, typer.Option(help="One pass, waiting for loop runs, then exit.")] = False,
) -> None:
    """Run what opsloop does by itself: due monitor checks, alert deliveries, pipeline
    triggers (cron, new data versions, alerts, webhooks) and retraining loops with their
    rollouts.

    A server does this by itself; this command is the scheduler of the embedded store.
    """
    client = command_client()
    runner = client.scheduler(interval=interval)
    try:
        while True:
            for run in runner.tick(wait=once):
                console().print(
                    f"{when(run.started_at)} {run.monitor}: {run.status} ({run.rows} rows)"
                )
            if once:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return
    finally:
        runner.stop()
