"""``opsloop prompts ...``: save, show, render, label and diff versioned prompts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated
from typing import Any

import typer

from opsloop.console.commands import JsonOption
from opsloop.console.commands import alias_ref
from opsloop.console.commands import command_group
from opsloop.console.commands import version_ref
from opsloop.console.output import command_client
from opsloop.console.output import console
from opsloop.console.output import parse_tags
from opsloop.console.output import print_json
from opsloop.console.output import print_listing
from opsloop.console.output import when

if TYPE_CHECKING:
    from opsloop.kernel.refs import VersionRef

prompts_app = command_group(
    "Versioned text and chat prompts with labels (production, staging, ...), rendered in a "
    "sandbox. A version is NAME@N, NAME@LABEL, or NAME (the latest; `render` takes "
    "production). Examples:\n\n"
    "  opsloop prompts create answer --text 'Answer: {{ question }}' --label staging\n"
    "  opsloop prompts create answer --messages chat.json --config model=gpt-4o-mini\n"
    "  opsloop prompts show answer@staging\n"
    "  opsloop prompts label answer@2 production\n"
    "  opsloop prompts render answer --var question='Where is my order?'\n"
    "  opsloop prompts diff answer@1 answer@2"
)


@prompts_app.command("create")
def create(
    name: str,
    text: Annotated[str | None, typer.Option(help="The template of a text prompt.")] = None,
    text_file: Annotated[
        Path | None, typer.Option(help="Read the text template from a file.")
    ] = None,
    messages: Annotated[
        Path | None, typer.Option(help='A JSON file: [{"role": "system", "content": "..."}, ...]')
    ] = None,
    config: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE (JSON values), repeatable.")
    ] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="What changed.")] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="Point this label at it, repeatable.")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Save the next version of a prompt (the latest comes back if nothing changed)."""
    from opsloop.errors import InvalidInput

    if text_file is not None:
        try:
            text = text_file.read_text()
        except OSError as exc:
            raise InvalidInput(f"cannot read {text_file}: {exc.strerror or exc}") from None
    chat = None
    if messages is not None:
        try:
            chat = json.loads(messages.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read messages from {messages}: {exc}") from None
    settings = {}
    for key, raw in parse_tags(config).items():
        try:
            settings[key] = json.loads(raw)
        except ValueError:
            settings[key] = raw
    prompt = command_client().prompts.create(
        name, text=text, messages=chat, config=settings, message=message, labels=label
    )
    if json_:
        print_json(prompt)
        return
    console().print(
        f"{prompt.ref} ({prompt.type}; variables: {', '.join(prompt.variables) or 'none'})"
    )


@prompts_app.command("list")
def list_prompts(json_: JsonOption = False) -> None:
    """Prompts with their latest version and labels."""
    page = command_client().prompts.list(max_results=10_000)
    rows = [
        (
            p.name,
            p.latest_version or "",
            ", ".join(f"{k}→{v}" for k, v in p.labels.items()),
            when(p.updated_at),
        )
        for p in page.items
    ]
    print_listing(page.items, ["prompt", "latest", "labels", "updated"], rows, as_json=json_)


@prompts_app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="NAME (the latest), NAME@N or NAME@LABEL.")],
    json_: JsonOption = False,
) -> None:
    """One version: template, config, variables, labels."""
    prompt = command_client().prompts.get_version(str(_ref(ref)))
    if json_:
        print_json(prompt)
        return
    out = console()
    out.print(f"[bold]{prompt.ref}[/] ({prompt.type}) labels: {', '.join(prompt.labels) or 'none'}")
    if prompt.text is not None:
        out.print(prompt.text, markup=False, highlight=False)
    for m in prompt.messages or []:
        out.print(f"[dim][{m.role}][/dim]")
        out.print(m.content, markup=False, highlight=False)
    if prompt.config:
        out.print(f"config: {json.dumps(prompt.config)}")


@prompts_app.command("versions")
def versions(name: str, json_: JsonOption = False) -> None:
    """Every version of a prompt, newest first."""
    listed = command_client().prompts.versions(name)
    rows = [
        (
            p.version,
            p.type,
            ", ".join(p.labels),
            ", ".join(p.variables),
            when(p.created_at),
            p.message or "",
        )
        for p in listed
    ]
    columns = ["version", "type", "labels", "variables", "created", "message"]
    print_listing(listed, columns, rows, as_json=json_, title=name)


def _ref(ref: str, version: str | None = None) -> VersionRef:
    return version_ref(ref, version, "prompt")


def _number(prompts: Any, ref: VersionRef) -> int:
    """The version number a reference stands for (a label or latest is looked up)."""
    return ref.number if ref.number is not None else prompts.get_version(str(ref)).version


@prompts_app.command("label")
def label(
    ref: Annotated[str, typer.Argument(metavar="NAME@VERSION", help="answer@4, answer@staging.")],
    rest: Annotated[
        list[str], typer.Argument(metavar="[VERSION] LABEL", help="The label to point.")
    ],
) -> None:
    """Point LABEL (production, staging, ...) at a version: `answer@4 production` (or the
    older `answer 4 production`); NAME alone is the latest version."""
    from opsloop.errors import InvalidInput

    if len(rest) not in (1, 2):
        raise InvalidInput("label takes NAME@VERSION LABEL (or NAME VERSION LABEL)")
    parsed = _ref(ref, rest[0] if len(rest) == 2 else None)
    prompts = command_client().prompts
    prompt = prompts.set_label(parsed.name, _number(prompts, parsed), rest[-1])
    console().print(f"{parsed.name}@{rest[-1]} → {prompt.ref}")


@prompts_app.command("unlabel")
def unlabel(
    name: Annotated[str, typer.Argument(metavar="NAME[@LABEL]")],
    label_name: Annotated[str | None, typer.Argument(metavar="[LABEL]")] = None,
) -> None:
    """Remove a label: answer@staging, or answer staging."""
    name, label_name = alias_ref(name, label_name, "prompt")
    command_client().prompts.delete_label(name, label_name)
    console().print(f"removed {name}@{label_name}")


@prompts_app.command("diff")
def diff(
    refs: Annotated[
        list[str],
        typer.Argument(metavar="OLD NEW", help="answer@1 answer@2 (or the older answer 1 2)."),
    ],
    json_: JsonOption = False,
) -> None:
    """What changed between two versions of a prompt: template, config, variables."""
    from opsloop.errors import InvalidInput

    if len(refs) == 3:
        old, new = _ref(refs[0], refs[1]), _ref(refs[0], refs[2])
    elif len(refs) == 2:
        old = _ref(refs[0])
        new = _ref(old.name, refs[1]) if refs[1].isascii() and refs[1].isdigit() else _ref(refs[1])
    else:
        raise InvalidInput("diff takes two versions: answer@1 answer@2 (or answer 1 2)")
    if old.name != new.name:
        raise InvalidInput(f"diff compares versions of one prompt, not {old} and {new}")
    prompts = command_client().prompts
    result = prompts.diff(old.name, _number(prompts, old), _number(prompts, new))
    if json_:
        print_json(result)
        return
    typer.echo(result.template or "(template unchanged)")
    for key, (before, after) in result.config.items():
        typer.echo(f"config {key}: {before!r} -> {after!r}")
    if result.variables_added or result.variables_removed:
        typer.echo(f"variables: +{result.variables_added} -{result.variables_removed}")


@prompts_app.command("render")
def render(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME[@VERSION]",
            help="answer (its production label), answer@3 or answer@staging.",
        ),
    ],
    label_name: Annotated[str | None, typer.Option("--label", help="Default: production.")] = None,
    version: Annotated[
        int | None, typer.Option(help="A version number instead of a label.")
    ] = None,
    var: Annotated[list[str] | None, typer.Option(help="NAME=VALUE, repeatable.")] = None,
) -> None:
    """Render a prompt with variables (a missing one is an error that names it)."""
    from opsloop.errors import InvalidInput

    if "@" in name:
        if label_name is not None or version is not None:
            raise InvalidInput(f"give the version once: {name!r} already names one")
        parsed = _ref(name)
        name, version, label_name = parsed.name, parsed.number, parsed.alias
    prompt = command_client().prompts.get(name, label=label_name, version=version, cache_ttl=0)
    rendered = prompt.compile(**parse_tags(var))
    typer.echo(rendered if isinstance(rendered, str) else json.dumps(rendered, indent=2))
