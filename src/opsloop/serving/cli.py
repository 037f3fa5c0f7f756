"""``opsloop deploy``, ``opsloop deployments ...`` and ``opsloop serve``."""

from __future__ import annotations

from typing import Annotated

import typer

from opsloop.cli.output import console, default_client, print_json, print_table, when

deployments_app = typer.Typer(
    help=(
        "Deployments of registered model versions and their traffic. Examples:\n\n"
        "  opsloop deploy churn@champion                  (serve it as deployment churn)\n\n"
        "  opsloop deploy churn@challenger --canary 10    (10% of requests to the challenger)\n\n"
        "  opsloop deploy churn@3 --ab 50 --sticky-header X-User-Id\n\n"
        "  opsloop deploy churn@4 --shadow    (a copy of each request; answers only logged)\n\n"
        "  opsloop deployments traffic churn 50 ; opsloop deployments promote churn\n\n"
        "  opsloop deployments rollback churn --reason 'error rate'"
    ),
    no_args_is_help=True,
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _show_policy(deployment: object) -> None:
    d = deployment
    console().print(
        f"{d.name}: {d.model} — {d.policy.describe()} (revision {d.revision}, {d.status})"  # type: ignore[attr-defined]
    )


def deploy(
    ref: Annotated[str, typer.Argument(help="The version to serve: NAME@N or NAME@alias.")],
    name: Annotated[str | None, typer.Option(help="Deployment name (default: model name).")] = None,
    canary: Annotated[
        float | None, typer.Option(help="Add REF as a canary taking this percent of traffic.")
    ] = None,
    ab: Annotated[
        float | None, typer.Option(help="Add REF as the B of an A/B test with this percent.")
    ] = None,
    sticky_header: Annotated[
        str | None, typer.Option(help="A/B: keep users on one side by this request header.")
    ] = None,
    sticky_cookie: Annotated[
        str | None, typer.Option(help="A/B: keep users on one side by this cookie.")
    ] = None,
    shadow: Annotated[
        bool, typer.Option("--shadow", help="Send REF a copy of the traffic; never answer.")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Serve a registered model version, or add it beside the served one (canary, A/B, shadow)."""
    sticky = None
    if sticky_header or sticky_cookie:
        sticky = {"header": sticky_header} if sticky_header else {"cookie": sticky_cookie}
    deployment = default_client().deployments.deploy(
        ref, name=name, canary=canary, ab=ab, sticky=sticky, shadow=shadow
    )
    if json_:
        print_json(deployment)
        return
    _show_policy(deployment)


@deployments_app.command("list")
def list_deployments(json_: JsonOption = False) -> None:
    """Deployments with what each serves."""
    deployments = default_client().deployments.list()
    if json_:
        print_json(deployments)
        return
    print_table(
        ["deployment", "model", "traffic", "status", "revision", "updated (UTC)"],
        [
            (d.name, d.model, d.policy.describe(), d.status, d.revision, when(d.updated_at))
            for d in deployments
        ],
    )


@deployments_app.command("show")
def show(name: str, json_: JsonOption = False) -> None:
    """A deployment's traffic and the history of every change to it."""
    client = default_client()
    deployment, events = client.deployments.get(name), client.deployments.events(name)
    if json_:
        print_json({"deployment": deployment, "events": events})
        return
    _show_policy(deployment)
    print_table(
        ["when (UTC)", "action", "by", "to", "reason"],
        [(when(e.at), e.action, e.actor, _describe(e.to_policy), e.reason or "") for e in events],
        title="history",
    )


def _describe(policy: dict | None) -> str:
    from opsloop.serving.entities import TrafficPolicy

    return TrafficPolicy.model_validate(policy).describe() if policy else ""


@deployments_app.command("traffic")
def traffic(
    name: str,
    weight: Annotated[float, typer.Argument(help="Percent of traffic to the candidate.")],
    reason: Annotated[str | None, typer.Option(help="Why (kept in the history).")] = None,
) -> None:
    """Change how much traffic the canary or A/B candidate gets."""
    _show_policy(default_client().deployments.set_traffic(name, weight, reason=reason))


@deployments_app.command("promote")
def promote(
    name: str,
    alias: Annotated[str, typer.Option(help="Alias the candidate takes.")] = "champion",
    no_alias: Annotated[bool, typer.Option("--no-alias", help="Move no alias.")] = False,
) -> None:
    """The candidate takes all traffic (and the model's champion alias)."""
    _show_policy(default_client().deployments.promote(name, alias=None if no_alias else alias))


@deployments_app.command("rollback")
def rollback(
    name: str, reason: Annotated[str | None, typer.Option(help="Why (kept in the history).")] = None
) -> None:
    """All traffic back to the stable version; the candidate is dropped."""
    _show_policy(default_client().deployments.rollback(name, reason=reason))


@deployments_app.command("delete")
def delete(name: str) -> None:
    """Stop serving (the versions it served can be deleted again)."""
    default_client().deployments.delete(name)
    console().print(f"deleted deployment {name}")


@deployments_app.command("predictions")
def predictions(
    name: str,
    limit: Annotated[int, typer.Option(help="The last N predictions.")] = 20,
    json_: JsonOption = False,
) -> None:
    """Logged predictions with their joined ground truth (on the server that answered them)."""
    frame = default_client().deployments.predictions(name).tail(limit)
    if json_:
        print_json(frame.to_dict(orient="records"))
        return
    columns = [c for c in ("request_id", "version", "shadow", "latency_ms", "outputs", "label")
               if c in frame.columns]  # fmt: skip
    print_table(columns, frame[columns].astype(str).values.tolist())


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Run the inference server: POST /v1/deployments/NAME/predict, /feedback, GET /metrics.

    Every deployment's versions are loaded (and asked once) before the first request; on stop
    it drains: requests in flight finish, shadow copies finish, the prediction log is sealed.
    """
    import os

    import uvicorn

    from opsloop.config import load_settings

    settings = load_settings()
    os.environ["OPSLOOP_DATABASE_URL"] = settings.database_url
    os.environ["OPSLOOP_BLOB_URL"] = settings.blob_url
    typer.echo(f"opsloop serve on http://{host}:{port}  (POST /v1/deployments/NAME/predict)")
    uvicorn.run(
        "opsloop.serving.app:serving_app_from_env", host=host, port=port, workers=workers,
        factory=True, log_level="warning", timeout_graceful_shutdown=30,
    )  # fmt: skip
