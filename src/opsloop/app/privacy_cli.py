"""``opsloop privacy ...``: retention settings, a sweep now, and erasing one end user's data.

Without a server URL these run on the store directly (as its owner, like ``opsloop users``),
and reach the prediction log under ``$OPSLOOP_HOME/predictions``; with one they ask the server
(``/api/privacy``, an admin's key in ``users`` mode), which sweeps and erases its own log.
"""

from __future__ import annotations

from typing import Annotated
from typing import Any

import typer

from opsloop.console.commands import JsonOption
from opsloop.console.commands import command_group
from opsloop.console.output import command_client
from opsloop.console.output import console
from opsloop.console.output import print_json
from opsloop.console.output import print_listing
from opsloop.console.output import when

privacy_app = command_group(
    "Data privacy: how long traces, scores and prediction logs are kept, and erasing one end "
    "user's data everywhere. Examples:\n\n"
    "  opsloop privacy retention set --traces 30 --predictions 90 --scores 30\n"
    "  opsloop privacy retention show\n"
    "  opsloop privacy sweep\n"
    "  opsloop privacy erase --user-id u-123 --dry-run\n\n"
    "  opsloop privacy mask set --streams traces,predictions --entities EMAIL,PHONE"
)
retention_app = command_group(
    "Days to keep each kind of data; the scheduler deletes what is older, once an hour."
)
privacy_app.add_typer(retention_app, name="retention")

_DAYS_HELP = "Days to keep {} (1 to 36500), or 'off' to keep them forever."


class _Privacy:
    """The command's way to the privacy workflow: the store here, or the server's routes."""

    def __init__(self) -> None:
        self.client = command_client()
        settings = self.client.settings
        self.http: Any = None
        if settings.is_remote:
            from opsloop.kernel.transport import HttpTransport

            self.http = HttpTransport(str(settings.server_url), settings.token)
        else:
            from opsloop.client import shared_stores
            from opsloop.serving.predlog import PredictionReader
            from opsloop.serving.predlog_shared import shared_log

            self.store = shared_stores(settings)[0]
            # every replica's log when the settings share one: erasure and retention reach it
            self.predictions = PredictionReader(settings.predictions_folder, shared_log(settings))

    def call(self, method: str, route: Any, **kwargs: Any) -> Any:
        return self.http.json(method, route.url(), **kwargs)


def _show(policy: Any, json_: bool) -> None:
    swept = policy.swept_at
    rows = [
        (kind, "forever" if getattr(policy, kind) is None else f"{getattr(policy, kind)} days",
         when(swept.get(kind)) if kind in swept else "never")
        for kind in ("traces", "scores", "predictions")
    ]  # fmt: skip
    title = f"retention in {policy.workspace}"
    print_listing(policy, ["kind", "kept", "last swept"], rows, as_json=json_, title=title)


@retention_app.command("set")
def retention_set(
    traces: Annotated[str | None, typer.Option(help=_DAYS_HELP.format("traces"))] = None,
    scores: Annotated[str | None, typer.Option(help=_DAYS_HELP.format("scores"))] = None,
    predictions: Annotated[
        str | None, typer.Option(help=_DAYS_HELP.format("prediction-log rows"))
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Set how many days traces (with their spans), scores and prediction logs are kept."""
    from opsloop.errors import InvalidInput
    from opsloop.governance import retention
    from opsloop.workflows.privacy_api import RETENTION

    given = {"traces": traces, "scores": scores, "predictions": predictions}
    values = {k: retention.parse_days(v, f"--{k}") for k, v in given.items() if v is not None}
    if not values:
        raise InvalidInput("give at least one of --traces, --scores, --predictions")
    body = retention.RetentionSet(**values)
    way = _Privacy()
    if way.http is not None:
        raw = way.call("PUT", RETENTION, json=body.model_dump(exclude_unset=True))
        policy = retention.RetentionPolicy.model_validate(raw)
    else:
        from opsloop.kernel.identity import current_user

        with way.store.write() as session:
            policy = retention.set_policy(session, body, current_user())
    _show(policy, json_)


@retention_app.command("show")
def retention_show(json_: JsonOption = False) -> None:
    """Days kept per kind and when each was last swept."""
    from opsloop.governance import retention
    from opsloop.workflows.privacy_api import RETENTION

    way = _Privacy()
    if way.http is not None:
        policy = retention.RetentionPolicy.model_validate(way.call("GET", RETENTION))
    else:
        with way.store.read() as session:
            policy = retention.get_policy(session)
    _show(policy, json_)


@privacy_app.command("sweep")
def sweep_now(json_: JsonOption = False) -> None:
    """Delete now what the retention settings no longer keep (the scheduler does it hourly)."""
    from opsloop.workflows.privacy import SweepResult
    from opsloop.workflows.privacy import sweep
    from opsloop.workflows.privacy_api import SWEEPS

    way = _Privacy()
    if way.http is not None:
        result = SweepResult.model_validate(way.call("POST", SWEEPS, idempotent=False))
    else:
        from opsloop.kernel.identity import current_user

        result = sweep(way.store, way.predictions, actor=current_user(), force=True)
    if json_:
        print_json(result)
        return
    if not result.swept:
        console().print("no retention set: nothing to sweep (opsloop privacy retention set)")
    for kind, counts in result.swept.items():
        deleted = ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing"
        console().print(f"{kind}: deleted {deleted}")


@privacy_app.command("erase")
def erase_user(
    user_id: Annotated[str, typer.Option("--user-id", help="The end user's id.")],
    dry_run: Annotated[bool, typer.Option(help="Count what would go; delete nothing.")] = False,
    json_: JsonOption = False,
) -> None:
    """Delete one end user's traces (with spans and scores), review items and prediction-log
    rows (requests whose body names the user_id), in one call; prints the count per kind."""
    from opsloop.workflows.privacy import ErasureResult
    from opsloop.workflows.privacy import check_user_id
    from opsloop.workflows.privacy import erase
    from opsloop.workflows.privacy_api import ERASURES

    user_id = check_user_id(user_id)  # before a store is opened or a server asked
    way = _Privacy()
    if way.http is not None:
        body = {"user_id": user_id, "dry_run": dry_run}
        raw = way.call("POST", ERASURES, json=body, idempotent=False)
        result = ErasureResult.model_validate(raw)
    else:
        from opsloop.kernel.identity import current_user

        result = erase(way.store, way.predictions, user_id, actor=current_user(), dry_run=dry_run)
    verb, rows = "would delete" if result.dry_run else "deleted", sorted(result.counts.items())
    print_listing(result, ["kind", verb], rows, as_json=json_, title=f"erasure of {user_id}")


mask_app = command_group(
    "Masking at ingest: PII replaced in spans and prediction logs before anything is written. "
    "Examples:\n\n"
    "  opsloop privacy mask set --streams traces,predictions --entities EMAIL,PHONE\n"
    "  opsloop privacy mask set --streams traces --entities EMAIL --mode hash\n"
    "  opsloop privacy mask set --streams predictions --entities off\n"
    "  opsloop privacy mask show --json"
)
privacy_app.add_typer(mask_app, name="mask")


def _show_masking(policy: Any, json_: bool) -> None:
    rows = []
    for stream in ("traces", "predictions"):
        rule = getattr(policy, stream)
        rows.append((stream, ", ".join(rule.entities), rule.mode) if rule else (stream, "off", ""))
    title = f"masking in {policy.workspace}"
    print_listing(policy, ["stream", "masked", "mode"], rows, as_json=json_, title=title)


@mask_app.command("set")
def mask_set(
    streams: Annotated[
        str, typer.Option(help="Where to mask, comma-separated: traces, predictions.")
    ],
    entities: Annotated[
        str,
        typer.Option(
            help="What to mask, comma-separated: EMAIL, PHONE, CREDIT_CARD, IBAN, IP, SSN, "
            "PERSON (or EMAIL_ADDRESS, PHONE_NUMBER...); 'off' to stop masking these streams."
        ),
    ],
    mode: Annotated[
        str,
        typer.Option(
            help="placeholder: <EMAIL_ADDRESS>; hash: <EMAIL_ADDRESS_3f9a...>, a keyed hash, so "
            "one value still matches itself across traces and predictions."
        ),
    ] = "placeholder",
    json_: JsonOption = False,
) -> None:
    """Mask PII at ingest from the next span or prediction on; what was stored stays."""
    from opsloop.errors import InvalidInput
    from opsloop.governance.masking import MODES
    from opsloop.governance.masking import check_streams
    from opsloop.governance.pii import check_entities

    if mode not in MODES:
        raise InvalidInput(f"--mode is one of {', '.join(MODES)}; got {mode!r}")
    names = None if entities.strip().lower() == "off" else list(check_entities(entities.split(",")))
    chosen: Any = mode  # checked against MODES above
    policy = command_client().governance.set_masking(check_streams(streams), names, mode=chosen)
    _show_masking(policy, json_)


@mask_app.command("show")
def mask_show(json_: JsonOption = False) -> None:
    """The PII entities masked at ingest, per stream, and how."""
    _show_masking(command_client().governance.masking(), json_)
