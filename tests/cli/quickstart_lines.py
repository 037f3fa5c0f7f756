"""Reading the quickstart's closing list the way a user copies it out of an 80-column
terminal, and parsing each command the way the CLI does, without running it.

Shared by the quickstart test in test_cli.py (one quickstart run checks the list, with the
rest of what the quickstart leaves) and test_quickstart_suggestions.py (the parser refuses
what the CLI refuses).
"""

from __future__ import annotations

import click
import typer

__all__ = ["parse", "suggestions"]


def parse(argv: list[str]) -> click.Context:
    """Parse ``opsloop ARGV`` the way the CLI does, down to the command it names, without
    running it: unknown commands, unknown options and missing arguments raise."""
    from opsloop.app.cli import app
    from opsloop.app.cli import register_commands

    register_commands([])
    command = typer.main.get_command(app)
    ctx = command.make_context("opsloop", list(argv))
    while isinstance(ctx.command, click.Group):
        rest = [*ctx._protected_args, *ctx.args]
        name, sub, args = ctx.command.resolve_command(ctx, rest)
        assert sub is not None and name is not None, argv
        ctx = sub.make_context(name, args, parent=ctx)
    return ctx


def suggestions(printed: str) -> list[tuple[str, str]]:
    """The (command, why) line pairs under "Where to look next"."""
    lines = printed.split("Where to look next\n", 1)[1].rstrip("\n").split("\n")
    assert len(lines) % 2 == 0, lines
    return list(zip(lines[::2], lines[1::2], strict=True))
