"""``opsloop models ...`` and ``opsloop lineage``: register, load, evaluate, promote through a
gate, model cards, alias history and the lineage graph."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated
from typing import Any

import typer

from opsloop.console.commands import AliasArg
from opsloop.console.commands import AliasedNameArg
from opsloop.console.commands import JsonOption
from opsloop.console.commands import RefArg
from opsloop.console.commands import VersionArg
from opsloop.console.commands import alias_ref
from opsloop.console.commands import command_group
from opsloop.console.commands import version_ref
from opsloop.console.output import command_client
from opsloop.console.output import console
from opsloop.console.output import for_people
from opsloop.console.output import parse_tags
from opsloop.console.output import print_json
from opsloop.console.output import print_listing
from opsloop.console.output import print_table
from opsloop.console.output import when
from opsloop.registry import compression_cli

if TYPE_CHECKING:
    from opsloop.registry.entities import AliasEvent
    from opsloop.registry.entities import ModelVersion

models_app = command_group(
    "The model registry: immutable model versions with signatures, cards, evaluations, and "
    "aliases that move through evaluation gates.\n\n"
    "A version is NAME@N; NAME@ALIAS (champion, challenger, ...) and NAME (latest) work "
    "wherever a version is asked for. Examples:\n\n"
    "  opsloop models register churn --run RUN_ID    # the package the run logged\n"
    "  opsloop models show churn@3\n"
    "  opsloop models alias churn@3 challenger\n"
    "  opsloop models evaluate churn@4 --data churn-data@2 --target churned --slice plan\n"
    "  opsloop models promote churn@4 --to champion --policy gate.yaml\n"
    "  opsloop models history churn@champion\n"
    "  opsloop models compress churn@4 --method onnx-int8 --data churn-data@2 --target churned\n"
    "  opsloop lineage churn@champion"
)

_VERSION_COLUMNS = [
    "version",
    "flavor",
    "task",
    "aliases",
    "run",
    "source",
    "created",
    "description",
]


def _version_row(v: ModelVersion) -> tuple[Any, ...]:
    return (
        v.ref,
        v.flavor,
        v.task or "",
        ", ".join(v.aliases),
        (v.run_id or "")[:8],
        "run" if (v.source or "").startswith("runs:/") else (v.source or "")[-40:],
        when(v.created_at),
        v.description or "",
    )


def _ref(ref: str, version: str | None = None) -> str:
    """``NAME@N``, ``NAME@ALIAS``, ``NAME`` or the older ``NAME N`` as one checked ref."""
    return str(version_ref(ref, version, "model"))


@models_app.command("list")
def list_models(json_: JsonOption = False) -> None:
    """Registered models with their latest version and aliases."""
    page = command_client().models.list(max_results=10_000)
    if json_:
        print_json(page.items)
        return
    rows = [
        (
            m.name,
            m.latest_version or "",
            ", ".join(f"{a}→{n}" for a, n in m.aliases.items()),
            "yes" if m.gate_policy else "",
            when(m.updated_at),
            m.description or "",
        )
        for m in page.items
    ]
    print_table(["model", "latest", "aliases", "gate", "updated", "description"], rows)


@models_app.command("show")
def show(
    name: Annotated[
        str, typer.Argument(metavar="NAME[@VERSION]", help="churn (all versions) or churn@3.")
    ],
    version_: VersionArg = None,
    json_: JsonOption = False,
) -> None:
    """A model and its versions, newest first; with a version (churn@3, churn@champion,
    churn 3), that version as `models version` shows it."""
    if "@" in name or version_ is not None:
        version(_ref(name, version_), json_)
        return
    client = command_client()
    model = client.models.get(name)
    versions = client.models.versions(name, max_results=10_000).items
    if json_:
        print_json({"model": model, "versions": versions})
        return
    print_table(_VERSION_COLUMNS, [_version_row(v) for v in versions], title=model.name)
    if model.gate_policy:
        console().print(f"gate policy: {json.dumps(model.gate_policy)}")


@models_app.command("version")
def version(ref: RefArg, json_: JsonOption = False) -> None:
    """One version: package, signature, requirements, aliases, tags."""
    v = command_client().models.version(_ref(ref))
    if json_:
        print_json(v)
        return
    print_table(_VERSION_COLUMNS, [_version_row(v)])
    inputs = v.signature.inputs
    console().print(f"inputs: {inputs.describe()}")
    if v.signature.outputs is not None:
        console().print(f"outputs: {v.signature.outputs.describe()}")
    console().print(f"requirements: {', '.join(v.requirements)}")
    console().print(f"package: {v.package_id} ({v.file_count} files, {v.total_bytes:,} bytes)")


@models_app.command("register")
def register(
    name: str,
    run: Annotated[
        str | None, typer.Option("--run", help="A FINISHED run that logged a model.")
    ] = None,
    path: Annotated[
        str, typer.Option("--path", help="With --run: the package folder among its artifacts.")
    ] = "model",
    file: Annotated[
        Path | None, typer.Option("--file", help="A package folder, .skops or .onnx file.")
    ] = None,
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable.")] = None,
    json_: JsonOption = False,
) -> None:
    """Register the next version of NAME from a run's logged package or from a file."""
    models = command_client().models
    v = models.register(
        name,
        run_id=run,
        artifact_path=path,
        path=file,
        description=description,
        tags=parse_tags(tag),
    )
    if json_:
        print_json(v)
        return
    console().print(f"registered {v.ref} ({v.flavor}, {v.task or 'task not stated'})")


@models_app.command("alias")
def alias(
    ref: RefArg,
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS")],
    reason: Annotated[str | None, typer.Option(help="Recorded in the alias history.")] = None,
) -> None:
    """Point ALIAS at a version without a gate (use `promote` for gated aliases):
    `opsloop models alias churn@3 champion`."""
    v = command_client().models.set_alias(_ref(ref), alias_name, reason=reason)
    console().print(f"{v.name}@{alias_name} → {v.ref}")


@models_app.command("unalias")
def unalias(name: AliasedNameArg, alias_name: AliasArg = None) -> None:
    """Delete an alias: churn@challenger, or churn challenger."""
    name, alias_name = alias_ref(name, alias_name, "model")
    command_client().models.delete_alias(name, alias_name)
    console().print(f"deleted {name}@{alias_name}")


@models_app.command("delete-version")
def delete_version(ref: RefArg) -> None:
    """Delete a version (refused while an alias or deployment points at it)."""
    models = command_client().models
    shown = models.version(_ref(ref)).ref
    models.delete_version(shown)
    console().print(f"deleted {shown}")


@models_app.command("delete")
def delete(name: str) -> None:
    """Delete a model and all its versions (refused while it has aliases)."""
    command_client().models.delete(name)
    console().print(f"deleted model {name}")


@models_app.command("set-policy")
def set_policy(
    name: str,
    policy: Annotated[Path, typer.Argument(help="Gate policy (YAML or JSON).")],
) -> None:
    """Store the gate policy that `promote` uses when it is given none."""
    command_client().models.update(name, gate_policy=policy)
    console().print(f"{name}: gate policy stored")


def _print_verdict(event: AliasEvent) -> None:
    from opsloop.evaluation.gates import verdict_rows

    verdict = event.verdict or {}
    rows = [("PASS" if ok else "FAIL", *cells) for ok, *cells in verdict_rows(verdict, for_people)]
    if rows:
        champion = (verdict.get("champion") or {}).get("ref", "none")
        title = f"gate on {verdict.get('data')}: candidate vs champion ({champion})"
        print_table(["", "rule", "candidate", "champion", "detail"], rows, title=title)


@models_app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="Model name, or NAME@N.")],
    version: Annotated[str | None, typer.Argument(help="Version number (or alias).")] = None,
    to: Annotated[str, typer.Option("--to", help="The alias to move.")] = "champion",
    policy: Annotated[
        Path | None, typer.Option(help="Gate policy (YAML/JSON); default: the model's stored one.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Skip the gate (needs --reason; recorded).")] = False,
    reason: Annotated[str | None, typer.Option(help="Why; required with --force.")] = None,
    json_: JsonOption = False,
) -> None:
    """Move an alias to a version if it passes the evaluation gate.

    Both the candidate and the alias's current version are evaluated on the policy's data; the
    verdict with every number is recorded either way. Exits 1 when the gate rejects.
    """
    event = command_client().models.promote(
        _ref(name, version), to, policy=policy, force=force, reason=reason
    )
    if json_:
        print_json(event)
    else:
        _print_verdict(event)
        target = f"{event.name}@{event.to_number}"
        if event.kind == "forced":
            console().print(f"forced: {event.name}@{to} → {target} (reason: {event.reason})")
        elif event.moved:
            console().print(f"[green]passed[/green]: {event.name}@{to} → {target}")
        else:
            console().print(f"[red]rejected[/red]: {event.name}@{to} stays at {event.from_number}")
    if not event.moved:
        raise typer.Exit(1)


@models_app.command("history")
def history(
    name: Annotated[str, typer.Argument(metavar="NAME[@ALIAS]", help="churn, or churn@champion.")],
    alias_name: Annotated[str | None, typer.Option("--alias", help="Only this alias.")] = None,
    json_: JsonOption = False,
) -> None:
    """Every decision about the model's aliases: sets, promotions, rejections, forced moves
    (of one alias with churn@champion or --alias champion)."""
    if "@" in name:
        name, alias_name = alias_ref(name, alias_name, "model")
    events = command_client().models.history(name, alias_name)
    rows = [
        (
            when(e.created_at),
            e.alias,
            e.kind,
            "" if e.from_number is None else e.from_number,
            "" if e.to_number is None else e.to_number,
            "yes" if e.moved else "no",
            e.created_by,
            e.reason or "",
        )
        for e in events
    ]
    header = ["when", "alias", "kind", "from", "to", "moved", "by", "reason"]
    print_listing(events, header, rows, as_json=json_)


@models_app.command("evaluate")
def evaluate(
    ref: RefArg,
    data: Annotated[str, typer.Option("--data", help="Dataset version (NAME@N) to evaluate on.")],
    target: Annotated[str, typer.Option("--target", help="The label column.")],
    task: Annotated[str | None, typer.Option(help="classification or regression.")] = None,
    slice_: Annotated[
        list[str] | None, typer.Option("--slice", help="Column to slice by, repeatable.")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Evaluate a version on a dataset version and store the result (linked to both)."""
    result = command_client().models.evaluate(
        _ref(ref), str(version_ref(data, noun="dataset")), target=target, task=task, slices=slice_
    )
    if json_:
        print_json(result.model_dump(mode="json", exclude={"report": {"plots"}}))
        return
    rows = [(k, v) for k, v in result.metrics.items() if v is not None]
    print_table(["metric", "value"], rows, title=f"{result.model_ref} on {result.dataset_ref}")
    for column, groups in result.report.get("slices", {}).items():
        metric = "f1" if result.task == "classification" else "rmse"
        slice_rows = [(label, g["rows"], g.get(metric)) for label, g in groups.items()]
        print_table([column, "rows", metric], slice_rows)
    console().print(f"evaluation {result.evaluation_id}")


@models_app.command("card")
def card(
    ref: RefArg,
    out: Annotated[Path | None, typer.Option(help="Write to this file instead.")] = None,
    json_: JsonOption = False,
) -> None:
    """The model card (Markdown, or --json): what the registry knows plus what people wrote."""
    content = command_client().models.card(_ref(ref), markdown=not json_)
    text = json.dumps(content, indent=2, default=str) if json_ else content
    if out is not None:
        out.write_text(text)
        console(stderr=True).print(f"wrote {out}")
    else:
        typer.echo(text)


@models_app.command("card-set")
def card_set(
    ref: RefArg,
    intended_use: Annotated[str | None, typer.Option(help="Who should use it, for what.")] = None,
    limitations: Annotated[str | None, typer.Option(help="Where it is known to fail.")] = None,
    ethical_considerations: Annotated[str | None, typer.Option()] = None,
    section: Annotated[
        list[str] | None, typer.Option(help="Any other section as KEY=TEXT, repeatable.")
    ] = None,
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
) -> None:
    """Write the parts of a version's card that only people know."""
    sections = {
        k: v
        for k, v in {
            "intended_use": intended_use,
            "limitations": limitations,
            "ethical_considerations": ethical_considerations,
            **parse_tags(section),
        }.items()
        if v is not None
    }
    v = command_client().models.update_version(
        _ref(ref), description=description, card=sections or None
    )
    console().print(f"{v.ref}: card sections {sorted(v.card)}")


@models_app.command("predict")
def predict(
    ref: RefArg,
    input_path: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON records to predict.")],
    trusted: Annotated[bool, typer.Option(help="Allow pickled (pyfunc) packages.")] = False,
) -> None:
    """Predict with a version; prints one JSON prediction per line."""
    import pandas as pd

    from opsloop.errors import InvalidInput

    suffix = input_path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(input_path)
        elif suffix == ".parquet":
            frame = pd.read_parquet(input_path)
        elif suffix in (".json", ".jsonl"):
            frame = pd.read_json(input_path, lines=suffix == ".jsonl")
        else:
            raise InvalidInput(f"cannot read {input_path.name}: use .csv, .parquet, .json(l)")
    except (OSError, ValueError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"cannot read {input_path}: {exc}") from exc
    model = command_client().models.load(_ref(ref), trusted=trusted)
    for value in model.predict(frame):
        typer.echo(json.dumps(value.item() if hasattr(value, "item") else value))


def lineage(
    ref: Annotated[str, typer.Argument(help="churn@3 (a model), iris@2 (a dataset), a run id.")],
    kind: Annotated[
        str | None,
        typer.Option(help="model, data or run (default: whichever has something named REF)."),
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Where something came from (runs, data versions, code) and what used it (evaluations,
    deployments)."""
    from rich.tree import Tree

    graph = command_client().models.lineage(ref, kind=kind)
    if json_:
        print_json(graph)
        return
    root = Tree(f"[bold]{graph['node']['label']}[/bold]")
    for title, items in (("upstream", graph["upstream"]), ("downstream", graph["downstream"])):
        branch = root.add(f"[dim]{title}[/dim]")
        _add(branch, items)
        if not items:
            branch.add("[dim](nothing recorded)[/dim]")
    console().print(root)


def _add(branch: Any, items: list[dict[str, Any]]) -> None:
    for item in items:
        child = branch.add(f"{item['label']} [dim]({item['relation']})[/dim]")
        _add(child, item.get("children", []))


models_app.command("compress")(compression_cli.compress)
