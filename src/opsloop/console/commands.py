"""What every domain's command group repeats: how the group is made, the ``--json`` flag and the
version argument, and reading a paged listing to the end.

Each domain's ``cli.py`` declares its own commands; these pieces are the same in all of them, so
a flag reads the same (``--json``, its help) whichever command it is on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from opsloop.kernel.paging import Page

__all__ = ["JsonOption", "RefArg", "command_group", "every_item"]

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
RefArg = Annotated[str, typer.Argument(help="NAME@N, NAME@ALIAS or NAME (latest).")]


def command_group(help: str) -> typer.Typer:
    """A group of commands (``opsloop data``, ``opsloop models``...); run bare, it shows its
    help."""
    return typer.Typer(help=help, no_args_is_help=True)


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
