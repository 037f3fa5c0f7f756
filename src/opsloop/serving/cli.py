"""``opsloop deploy``, ``opsloop deployments ...`` and ``opsloop serve``."""

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
from opsloop.console.output import print_listing
from opsloop.console.output import print_table
from opsloop.console.output import print_view
from opsloop.console.output import when
from opsloop.serving import image_cli

deployments_app = command_group(
    "Deployments of registered model versions and their traffic. Examples:\n\n"
    "  opsloop deploy churn@champion                  (serve it as deployment churn)\n\n"
    "  opsloop deploy churn@challenger --canary 10    (10% of requests to the challenger)\n\n"
    "  opsloop deploy churn@3 --ab 50 --sticky-header X-User-Id\n\n"
    "  opsloop deploy churn@4 --shadow    (a copy of each request; answers only logged)\n\n"
    "  opsloop deployments traffic churn 50 ; opsloop deployments promote churn\n\n"
    "  opsloop deployments rollback churn --reason 'error rate'\n\n"
    "  opsloop deployments export churn --k8s | kubectl apply -f -"
)


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
    deployment = command_client().deployments.deploy(
        ref, name=name, canary=canary, ab=ab, sticky=sticky, shadow=shadow
    )
    print_view(deployment, _show_policy, as_json=json_)


@deployments_app.command("list")
def list_deployments(json_: JsonOption = False) -> None:
    """Deployments with what each serves."""
    deployments = command_client().deployments.list()
    header = ["deployment", "model", "traffic", "status", "revision", "updated (UTC)"]
    rows = [(d.name, d.model, d.policy.describe(), d.status, d.revision, when(d.updated_at))
            for d in deployments]  # fmt: skip
    print_listing(deployments, header, rows, as_json=json_)


@deployments_app.command("show")
def show(name: str, json_: JsonOption = False) -> None:
    """A deployment's traffic and the history of every change to it."""
    client = command_client()
    deployment, events = client.deployments.get(name), client.deployments.events(name)
    print_view({"deployment": deployment, "events": events}, _show_history, as_json=json_)


def _show_history(found: dict[str, Any]) -> None:
    events = found["events"]
    rows = [(when(e.at), e.action, e.actor, _describe(e.to_policy), e.reason or "") for e in events]
    _show_policy(found["deployment"])
    print_table(["when (UTC)", "action", "by", "to", "reason"], rows, title="history")


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
    _show_policy(command_client().deployments.set_traffic(name, weight, reason=reason))


@deployments_app.command("promote")
def promote(
    name: str,
    alias: Annotated[str, typer.Option(help="Alias the candidate takes.")] = "champion",
    no_alias: Annotated[bool, typer.Option("--no-alias", help="Move no alias.")] = False,
) -> None:
    """The candidate takes all traffic (and the model's champion alias)."""
    _show_policy(command_client().deployments.promote(name, alias=None if no_alias else alias))


@deployments_app.command("rollback")
def rollback(
    name: str, reason: Annotated[str | None, typer.Option(help="Why (kept in the history).")] = None
) -> None:
    """All traffic back to the stable version; the candidate is dropped."""
    _show_policy(command_client().deployments.rollback(name, reason=reason))


@deployments_app.command("delete")
def delete(name: str) -> None:
    """Stop serving (the versions it served can be deleted again)."""
    command_client().deployments.delete(name)
    console().print(f"deleted deployment {name}")


@deployments_app.command("predictions")
def predictions(
    name: str,
    limit: Annotated[int, typer.Option(help="The last N predictions.")] = 20,
    json_: JsonOption = False,
) -> None:
    """Logged predictions with their joined ground truth (on the server that answered them)."""
    frame = command_client().deployments.predictions(name).tail(limit)
    if json_:
        print_json(frame.to_dict(orient="records"))
        return
    columns = [c for c in ("request_id", "version", "shadow", "latency_ms", "outputs", "label")
               if c in frame.columns]  # fmt: skip
    print_table(columns, frame[columns].astype(str).values.tolist())


@deployments_app.command("export")
def export(
    name: str,
    k8s: Annotated[bool, typer.Option("--k8s", help="Kubernetes manifests (the format).")] = False,
    image: Annotated[
        str | None,
        typer.Option(help="Image to run (default: opsloop/NAME:VERSION, as build-image tags)."),
    ] = None,
    out: Annotated[
        str | None, typer.Option(help="Folder to write NAME's YAML file in (default: stdout).")
    ] = None,
    replicas: Annotated[
        int | None, typer.Option(help="A fixed pod count (no autoscaler).", show_default=False)
    ] = None,
    autoscale: Annotated[
        str | None, typer.Option(help="MIN,MAX pods on 70% CPU (default 2,6).", show_default=False)
    ] = None,
    port: Annotated[int, typer.Option(help="Port the pods listen on.")] = 8080,
    secret: Annotated[
        str, typer.Option(help="Secret with OPSLOOP_DATABASE_URL, OPSLOOP_BLOB_URL, OPSLOOP_TOKEN.")
    ] = "opsloop-store",
    json_: Annotated[
        bool, typer.Option("--json", help="Print the manifests as a JSON v1 List instead.")
    ] = False,
) -> None:
    """Write what runs deployment NAME elsewhere. Examples:

      opsloop deployments export churn --k8s | kubectl apply -f -

      opsloop deployments export churn --k8s --out k8s/ --autoscale 3,12

      opsloop deployments export churn --k8s --image registry.example.com/churn:4 --replicas 2

    --k8s: a ConfigMap, a Deployment (non-root, probes on /healthz and /ping), a Service and a
    HorizontalPodAutoscaler, as one multi-document YAML file applied in that order. The pods run
    `opsloop serve` for NAME and read its traffic policy and models from the shared store.
    """
    from opsloop.errors import InvalidInput
    from opsloop.serving import k8s as manifests

    if not k8s:
        raise InvalidInput("choose what to export: --k8s (Kubernetes manifests)")
    if replicas is not None and autoscale is not None:
        raise InvalidInput("give --replicas (a fixed count) or --autoscale MIN,MAX, not both")
    bounds = manifests.parse_autoscale(autoscale) if autoscale is not None else None
    deployment = _deployment_named(name)
    sizing: dict[str, Any] = {} if bounds is None else {"autoscale": bounds}
    if replicas is not None:
        sizing = {"replicas": replicas, "autoscale": None}
    image = image or manifests.default_image(deployment)
    options = manifests.K8sOptions(image=image, port=port, secret=secret, **sizing)
    documents = manifests.manifests(deployment, options)
    if json_:
        print_json({"apiVersion": "v1", "kind": "List", "items": documents})
        return
    import yaml

    text = yaml.safe_dump_all(documents, sort_keys=False)
    if out is None:
        typer.echo(text, nl=False)
        return
    path = _write(Path(out), f"{manifests.object_name(deployment.name)}.yaml", text)
    kinds = ", ".join(d["kind"] for d in documents)
    typer.echo(f"wrote {path}: {kinds}")  # unwrapped: the path is copied


def _deployment_named(name: str) -> Any:
    """The deployment; an unknown name says the closest one there is."""
    import difflib

    from opsloop.errors import NotFound

    deployments = command_client().deployments
    try:
        return deployments.get(name)
    except NotFound as exc:
        near = difflib.get_close_matches(name, [d.name for d in deployments.list()], n=1)
        hint = f": did you mean {near[0]!r}?" if near else ""
        raise NotFound(f"{exc.message}{hint}") from None


def _write(folder: Path, file_name: str, text: str) -> Path:
    from opsloop.errors import InvalidInput

    path = folder / file_name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


_DURATION = {"s": 1, "m": 60, "h": 3600}


def parse_steps(text: str) -> list[dict[str, object]]:
    """``10,30s,50,500r,analysis,100``: weights in percent, pauses as a time (s/m/h) or a request
    count (r), and ``analysis`` for a one-off check."""
    from opsloop.errors import InvalidInput

    steps: list[dict[str, object]] = []
    for token in (t.strip() for t in text.split(",") if t.strip()):
        try:
            if token == "analysis":
                steps.append({"analysis": True})
            elif token[-1] in _DURATION:
                steps.append({"pause_seconds": float(token[:-1]) * _DURATION[token[-1]]})
            elif token.endswith("r"):
                steps.append({"pause_requests": int(token[:-1])})
            else:
                steps.append({"set_weight": float(token)})
        except ValueError:
            raise InvalidInput(
                f"step {token!r}: use a weight (10), a pause (30s, 5m, 500r) or 'analysis'"
            ) from None
    return steps


def parse_check(text: str) -> dict[str, object]:
    """``error_rate<0.01``, ``accuracy>0.9``, ``latency_p99_ms<50@100`` (@ = min samples)."""
    import re

    from opsloop.errors import InvalidInput

    match = re.fullmatch(r"\s*([a-z0-9_]+)\s*([<>])\s*([0-9.eE+-]+)\s*(?:@\s*(\d+))?\s*", text)
    if match is None:
        raise InvalidInput(f"check {text!r}: write METRIC<VALUE or METRIC>VALUE (@SAMPLES)")
    metric, op, value, samples = match.groups()
    check: dict[str, object] = {"metric": metric, "max" if op == "<" else "min": float(value)}
    if samples:
        check["min_samples"] = int(samples)
    return check


@deployments_app.command("rollout")
def rollout(
    ref: Annotated[str, typer.Argument(help="The candidate: NAME@N or NAME@alias.")],
    name: Annotated[str | None, typer.Option(help="Deployment (default: model name).")] = None,
    steps: Annotated[str, typer.Option(help="e.g. 10,30s,50,500r,100 (weights and pauses).")] = (
        "10,60s,50,60s"
    ),
    check: Annotated[
        list[str] | None,
        typer.Option(help="e.g. error_rate<0.01, latency_p99_ms<50, accuracy>0.9@50."),
    ] = None,
    failure_limit: Annotated[int, typer.Option(help="Failed analyses tolerated.")] = 0,
    watch: Annotated[bool, typer.Option(help="Follow it until it ends.")] = False,
) -> None:
    """Roll a candidate out in steps; promote it (champion) or roll it back on the checks."""
    import time

    deployments = command_client().deployments
    started = deployments.rollout(
        ref, name=name, steps=parse_steps(steps),
        checks=[parse_check(c) for c in check or []], failure_limit=failure_limit,
    )  # fmt: skip
    console().print(
        f"rollout {started.id[:8]} of v{started.spec.candidate} on {started.deployment}"
    )
    current = started
    while watch and current.status == "running":
        time.sleep(1)
        current = deployments.advance(started.deployment)
        last = current.analyses[-1] if current.analyses else None
        if last is not None:
            console().print(
                f"  step {last.step + 1}/{len(current.spec.steps)}: {last.verdict}"
                + (f" ({'; '.join(last.reasons)})" if last.reasons else "")
            )
    if watch:
        _print_rollout(current)
        if current.status != "succeeded":
            raise typer.Exit(1)


def _print_rollout(current: object) -> None:
    r = current
    console().print(
        f"rollout {r.id[:8]} of v{r.spec.candidate}: {r.status} at step "  # type: ignore[attr-defined]
        f"{min(r.step + 1, len(r.spec.steps))}/{len(r.spec.steps)}"  # type: ignore[attr-defined]
        + (f" — {r.message}" if r.message else "")  # type: ignore[attr-defined]
    )


@deployments_app.command("rollout-status")
def rollout_status(name: str, json_: JsonOption = False) -> None:
    """Where the latest rollout stands, with its analyses."""
    print_view(command_client().deployments.rollout_status(name), _print_analyses, as_json=json_)


def _print_analyses(current: Any) -> None:
    _print_rollout(current)
    print_table(
        ["when (UTC)", "step", "verdict", "requests", "reasons"],
        [
            (when(a.at), a.step + 1, a.verdict, a.window.get("requests", 0), "; ".join(a.reasons))
            for a in current.analyses
        ],
    )


@deployments_app.command("abort")
def abort_rollout(
    name: str, reason: Annotated[str | None, typer.Option(help="Why.")] = None
) -> None:
    """Stop the running rollout and send all traffic back to the stable version."""
    _print_rollout(command_client().deployments.abort_rollout(name, reason=reason))


def predict(
    ref: Annotated[str, typer.Argument(help="The model: NAME@N or NAME@alias.")],
    source: Annotated[str, typer.Argument(help="A data version (NAME@N) or a Parquet/CSV path.")],
    output: Annotated[str, typer.Option(help="Dataset to write the predictions to.")],
    chunk_rows: Annotated[
        int | None,
        typer.Option(
            help="Rows per chunk (default: on Ray two chunks per cluster CPU, within "
            "1,000-50,000 rows; locally 50,000).",
            show_default=False,
        ),
    ] = None,
    proba: Annotated[bool, typer.Option(help="Add proba_<class> columns.")] = False,
    executor: Annotated[
        str, typer.Option(help="local, or ray (RAY_ADDRESS's cluster, else a local Ray).")
    ] = "local",
) -> None:
    """Batch inference: score a table in chunks into a new data version, with lineage."""
    from rich.progress import BarColumn
    from rich.progress import MofNCompleteColumn
    from rich.progress import Progress
    from rich.progress import TextColumn
    from rich.progress import TimeElapsedColumn

    client = command_client()
    progress = Progress(
        TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console(stderr=True), transient=True,
    )  # fmt: skip
    with progress:
        task = progress.add_task("rows", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = client.deployments.predict_batch(
            ref, source, output, chunk_rows=chunk_rows, proba=proba, on_chunk=advance,
            executor=executor,
        )  # fmt: skip
    console().print(
        f"{result.output}: {result.rows} rows scored by {result.model} in {result.chunks} chunk(s)"
    )


deployments_app.command("build-image")(image_cli.build_deployment_image)
