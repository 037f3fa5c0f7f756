"""What every domain's command group repeats: how the group is made, the ``--json`` flag and the
version argument, and reading a paged listing to the end.

Each domain's ``cli.py`` declares its own commands; these pieces are the same in all of them, so
a flag reads the same (``--json``, its help) whichever command it is on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Annotated
from typing import Any

import typer

from opsloop.console.groups import group_class

if TYPE_CHECKING:
    from opsloop.kernel.paging import Page
    from opsloop.kernel.refs import VersionRef

__all__ = [
    "AliasArg",
    "AliasedNameArg",
    "JsonOption",
    "RefArg",
    "VersionArg",
    "alias_ref",
    "command_group",
    "every_item",
    "version_ref",
]

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
RefArg = Annotated[str, typer.Argument(help="NAME@N, NAME@ALIAS or NAME (latest).")]
VersionArg = Annotated[
    str | None,
    typer.Argument(metavar="[VERSION]", help="N or ALIAS: `NAME N` is NAME@N, the older form."),
]
# The two arguments of a command that removes an alias, read by ``alias_ref``: ``churn@prod``
# or ``churn prod``.
AliasedNameArg = Annotated[str, typer.Argument(metavar="NAME[@ALIAS]")]
AliasArg = Annotated[str | None, typer.Argument(metavar="[ALIAS]")]


def command_group(help: str, *, aliases: dict[str, str] | None = None) -> typer.Typer:
    """A group of commands (``opsloop data``, ``opsloop models``...); run bare, it shows its
    help. Every group is an :class:`~opsloop.console.groups.OpsloopGroup` (one-line typo
    suggestions, tidied help); ``aliases`` lets it answer a name it lacks with one of its
    commands, e.g. ``{"list": "runs list"}``."""
    return typer.Typer(help=help, no_args_is_help=True, cls=group_class(aliases))


def version_ref(ref: str, version: str | None = None, noun: str = "model") -> VersionRef:
    """What a command was given as ``NAME@N``, ``NAME@ALIAS`` or ``NAME`` (latest), or in the
    older two-argument form ``NAME N``, as one reference checked by the grammar every store
    uses (``kernel.refs.parse_ref``): ``churn@``, ``churn@-1`` and ``churn@٣`` are refused
    here, with one line, before anything is asked of a store."""
    from opsloop.errors import InvalidInput
    from opsloop.kernel.refs import parse_ref

    if version is not None:
        if "@" in ref:
            raise InvalidInput(f"give the version once: {ref!r} already names one")
        ref = f"{ref}@{version}"
    return parse_ref(ref, noun)


def alias_ref(ref: str, alias: str | None = None, noun: str = "model") -> tuple[str, str]:
    """``NAME@ALIAS`` or ``NAME ALIAS`` (commands that remove an alias or a label) as the name
    and the alias; a number or a bare name is refused."""
    from opsloop.errors import InvalidInput

    parsed = version_ref(ref, alias, noun)
    if parsed.alias is None or ("@" not in ref and alias is None):
        raise InvalidInput(f"name an alias: NAME@ALIAS or NAME ALIAS, got {ref!r}")
    return parsed.name, parsed.alias


def every_item(fetch: Callable[[str | None], Page[Any]]) -> list[Any]:
    """All items of a paged listing: ``fetch(page_token)`` returns one page; follow the tokens
    until the last one."""
    items: list[Any] = []
    token = None
    while True:
        page = fetch(token)
        items.extend(page.items)
        if not (token := page.next_page_token):
            return items
