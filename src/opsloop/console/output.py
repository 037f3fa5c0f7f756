"""How every command prints: rich tables for people, ``--json`` for scripts, one-line errors."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import typer

__all__ = [
    "command_client",
    "console",
    "fail",
    "for_people",
    "parse_tags",
    "print_json",
    "print_listing",
    "print_outcome",
    "print_table",
    "print_view",
    "when",
]


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def command_client() -> Any:
    """The client the running command uses. The application layer builds it (from env vars
    and ``opsloop.toml``) when a command first asks, and hands it in on the command's context
    (``ctx.obj``), so no command chooses a store or a server itself."""
    import click

    context = click.get_current_context(silent=True)
    provide = context.find_root().obj if context is not None else None
    if not callable(provide):
        raise RuntimeError("no client on the command's context: run commands through `opsloop`")
    return provide()


def when(ms: int | None) -> str:
    """A stored timestamp as ``YYYY-MM-DD HH:MM:SS`` (UTC) for tables."""
    from opsloop.kernel.timeutil import ms_to_iso

    return (ms_to_iso(ms) or "")[:19].replace("T", " ")


def parse_tags(pairs: list[str] | None) -> dict[str, str]:
    """``--tag KEY=VALUE`` options as a dict; ``InvalidInput`` for a pair without ``=``."""
    from opsloop.errors import InvalidInput

    tags = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"--tag takes KEY=VALUE, got {pair!r}")
        tags[key] = value
    return tags


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """``--param KEY=VALUE`` options as a dict: each value read as JSON (``3``, ``true``,
    ``[1, 2]``), else kept as the string it is."""
    import json

    params: dict[str, Any] = {}
    for key, raw in parse_tags(pairs).items():
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, list | tuple):
        return [_jsonable(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    return obj


def print_json(obj: Any) -> None:
    """Print ``obj`` (pydantic models, lists, dicts) as indented JSON on stdout."""
    sys.stdout.write(json.dumps(_jsonable(obj), indent=2, default=str) + "\n")


def print_outcome(obj: Any, line: str, *, as_json: bool) -> None:
    """What a command did: ``obj`` as JSON for scripts (``--json``), else ``line`` for people."""
    if as_json:
        print_json(obj)
    else:
        typer.echo(line)


def print_listing(
    obj: Any,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    as_json: bool,
    title: str | None = None,
) -> None:
    """What a listing command found: ``obj`` as JSON for scripts (``--json``), else ``rows``
    under ``columns`` as a :func:`print_table` for people."""
    if as_json:
        print_json(obj)
    else:
        print_table(columns, rows, title)


def print_view(obj: Any, show: Callable[[Any], None], *, as_json: bool) -> None:
    """What a command fetched: ``obj`` as JSON for scripts (``--json``), else ``show(obj)``
    draws it for people (a tree, a few tables, lines). The command fetches once, both ways."""
    if as_json:
        print_json(obj)
    else:
        show(obj)


def for_people(value: Any) -> str:
    """A cell as people read it: floats to 4 significant digits (``0.9123``, ``1.5e-05``),
    whole numbers from 10,000 up without an exponent (``123457``); '' for None. ``--json``
    keeps every digit: only tables round."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isfinite(value):
        if 1e4 <= abs(value) < 1e15:
            return f"{value:.0f}"
        return f"{value:.4g}"
    return str(value)


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    title: str | None = None,
    *,
    cut: bool = False,
    max_width: int | Sequence[int | None] | None = None,
) -> None:
    """A rich table on stdout; values are shown with :func:`for_people` (floats rounded).

    Long values wrap onto more lines; with ``cut`` (a listing: one line per item, no vertical
    borders, as ``ls -l`` or ``docker ps``) they stay on one line and end in an ellipsis
    (``…``). ``max_width`` caps every column, or each column in turn (a list)."""
    from rich import box
    from rich.table import Table

    widths = [max_width] * len(columns) if not isinstance(max_width, Sequence) else max_width
    if cut:
        table = Table(
            title=title, header_style="bold", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False
        )
    else:
        table = Table(title=title, show_lines=False, header_style="bold")
    for column, width in zip(columns, widths, strict=True):
        if cut:
            table.add_column(column, overflow="ellipsis", no_wrap=True, max_width=width)
        else:
            table.add_column(column, overflow="fold", max_width=width)
    for row in rows:
        table.add_row(*(for_people(v) for v in row))
    console().print(table)


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` on stderr and exit with ``code``."""
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(code)
