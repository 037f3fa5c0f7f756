"""The one Click group class every ``opsloop`` group uses (the root and each domain's).

What it adds to Typer's group, once for all of them:

- A mistyped command gets one suggestion line (``No such command 'lst'. Did you mean
  'list'?``): Typer and Click each add their own, which printed it twice, and both ignored
  aliases.
- Aliases: a group may answer a name it lacks with one of its commands (``opsloop pipelines
  list`` is ``opsloop pipelines runs list``). They are not listed, but suggested.
- Help texts that read the same in every command. Click rewraps paragraphs and Typer's rich
  help keeps the source's line breaks in some places and not in others, so a docstring's
  examples ran into one line and a summary could end with a dangling "Examples:". Each help
  text is rewritten once, when its group is built: prose paragraphs become one line (the
  terminal wraps them), example lines (``opsloop ...``, or indented) become one block under an
  ``Examples:`` heading that keeps its lines, marked ``\\b`` for Click's plain help.
"""

from __future__ import annotations

import inspect
import re
from typing import Any
from typing import ClassVar

import click
from typer.core import HAS_RICH
from typer.core import TyperGroup

__all__ = ["OpsloopGroup", "group_class", "tidy_help"]

_LABEL = re.compile(r"\s*(?:For )?[Ee]xamples?:$")
_SOURCE = "_opsloop_source_help"  # the help as written, kept on the command once tidied


class OpsloopGroup(TyperGroup):
    """A Typer group with one-line typo suggestions, aliases and tidied help texts."""

    aliases: ClassVar[dict[str, str]] = {}  # a name this group lacks -> "sub command" path

    def __init__(self, **attrs: Any) -> None:
        attrs["suggest_commands"] = False  # resolve_command suggests, once
        super().__init__(**attrs)
        tidy_help(self)
        for command in self.commands.values():
            tidy_help(command)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        super().add_command(cmd, name)
        tidy_help(cmd)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The names in the order they were added (Typer's order) without building a command
        held unbuilt (:mod:`~opsloop.console.lazy_groups`), which Typer's ``items()`` did."""
        return list(self.commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in self.aliases:
            return found
        target: click.Command | None = self
        for part in self.aliases[cmd_name].split():
            target = target.get_command(ctx, part) if isinstance(target, click.Group) else None
        return target

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return click.Group.resolve_command(self, ctx, args)
        except click.exceptions.NoSuchCommand as exc:
            raise click.UsageError(self._no_such_command(ctx, exc.command_name), ctx) from None

    def _no_such_command(self, ctx: click.Context, name: str) -> str:
        """``No such command 'x'.`` and the closest names (aliases included), or else every
        command this group has."""
        import difflib

        listed = [n for n in self.list_commands(ctx) if not self.commands[n].hidden]
        close = difflib.get_close_matches(name, [*listed, *self.aliases], n=3)
        if close:
            return f"No such command {name!r}. Did you mean {' or '.join(map(repr, close))}?"
        return f"No such command {name!r}. Commands: {', '.join(listed)}."


def group_class(aliases: dict[str, str] | None = None) -> type[OpsloopGroup]:
    """``OpsloopGroup``, or a subclass answering ``aliases`` (``{"list": "runs list"}``)."""
    if not aliases:
        return OpsloopGroup
    return type("OpsloopAliasedGroup", (OpsloopGroup,), {"aliases": dict(aliases)})


def tidy_help(command: click.Command) -> None:
    """Rewrite ``command.help`` for the help renderer it will go through (once)."""
    if getattr(command, _SOURCE, None) is not None or not command.help:
        return
    setattr(command, _SOURCE, command.help)
    rich = HAS_RICH and getattr(command, "rich_markup_mode", None) is not None
    command.help = tidy_text(command.help, rich=rich)


def tidy_text(text: str, *, rich: bool) -> str:
    """Prose paragraphs on one line each; runs of example paragraphs as one block with a
    heading (``Examples:``) whose lines are kept: with a ``\\b`` line for Click, bare for
    Typer's rich help (which keeps the line breaks of every paragraph but the first)."""
    body, cut, rest = inspect.cleandoc(text).partition("\f")
    blocks: list[tuple[str, str | None, list[str]]] = []  # (kind, heading, lines)
    for paragraph in re.split(r"\n[ \t]*\n", body.strip("\n")):
        kind, heading, lines = _classify(paragraph.split("\n"))
        if kind == "example" and heading is None and blocks:
            last_kind, _, last_lines = blocks[-1]
            if last_kind == "example":  # one example per paragraph: one block for all
                last_lines.extend(lines)
                continue
            label = _LABEL.search(last_lines[0]) if last_kind == "prose" else None
            if label:  # "... Examples:" heads the block, not the prose before it
                heading = label.group().strip()
                prose = last_lines[0][: label.start()]
                if prose:
                    last_lines[0] = prose
                else:
                    blocks.pop()
        blocks.append((kind, heading, lines))
    out = []
    for index, (kind, heading, lines) in enumerate(blocks):
        if kind == "prose":
            out.append(lines[0])
            continue
        if kind == "example":
            heading = heading or ("Examples:" if len(lines) > 1 else "Example:")
            lines = [_example(line, rich) for line in lines]
        block = [heading, *lines] if heading else lines
        keep_marker = not rich or index == 0  # rich joins a first paragraph's lines
        out.append("\n".join(["\b", *block] if keep_marker else block))
    return "\n\n".join(out) + (cut + rest if cut else "")


def _classify(lines: list[str]) -> tuple[str, str | None, list[str]]:
    """A paragraph as ``prose`` (one line), ``example`` (lines of ``opsloop ...``) or
    ``verbatim`` (a ``\\b`` block or indented lines), with its heading line if it has one."""
    marked = lines[0].strip() == "\b"
    if marked:
        lines = lines[1:]
    heading = None
    if len(lines) > 1 and lines[0].rstrip().endswith(":") and not _example_line(lines[0]):
        heading, lines = lines[0].strip(), lines[1:]
    if lines and all(line.strip().startswith("opsloop ") for line in lines):
        return "example", heading, lines
    if marked or (lines and all(_example_line(line) for line in lines)):
        return "verbatim", heading, lines
    joined = " ".join(line.strip() for line in ([heading] if heading else []) + lines)
    return "prose", None, [joined]


def _example(line: str, rich: bool) -> str:
    """An example line, indented. Rich help dedents its paragraphs (inspect.cleandoc), which
    took the indent away: there the line is wrapped in a style (examples in plain weight
    among dim prose), and a ``[`` in it is escaped so rich prints it as written."""
    if not rich:
        return f"  {line.strip()}"
    return "[not dim]  " + line.strip().replace("[", "\\[") + "[/]"


def _example_line(line: str) -> bool:
    return line.startswith("  ") or line.strip().startswith(("opsloop ", "$ "))
