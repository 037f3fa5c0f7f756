"""Command groups whose commands become Click commands when first asked, not all at start-up.

Typer turns every registered command into a Click command before it parses a word: for each, it
reads the function's signature and type hints and builds its options. ``opsloop --help`` has
about 180 commands and lists only the top-level ones; ``opsloop models show NAME`` runs one of
the 17 in its group. Building them all was about half of ``--help``'s instructions and 6-8%
of a listing command's (issue 22, "Everyday speed"; bench/README.md).

:func:`lazy_typer` gives a stand-in for a Typer app: the same object but for its commands and
sub-groups, which its group (the app's own class, subclassed) holds in a :class:`LazyCommands`
mapping that asks Typer to build each entry when it is first looked up, with the arguments Typer
would have used. A group printing its help lists its commands from previews (name, help, the
flags a listing shows), so ``--help`` builds none. Names, order, help, options and behaviour
are those of the tree Typer builds eagerly: ``tests/cli/test_lazy_groups.py`` compares the two.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import MutableMapping
from typing import Any

import click
import typer
from typer.core import TyperCommand
from typer.core import TyperGroup
from typer.main import get_command_from_info
from typer.main import get_command_name
from typer.main import get_group_from_info
from typer.main import solve_typer_info_defaults
from typer.models import CommandInfo
from typer.models import Default
from typer.models import DefaultPlaceholder
from typer.models import TyperInfo

from opsloop.console.groups import OpsloopGroup
from opsloop.console.groups import tidy_help

__all__ = ["LazyCommands", "lazy_typer"]

# typer < 0.16 has no typo suggestions and takes no ``suggest_commands``.
_TAKES_SUGGEST = "suggest_commands" in get_group_from_info.__code__.co_varnames


class _Unbuilt:
    """A command not built yet: how to build it, and how to describe it in a listing."""

    __slots__ = ("build", "preview")

    def __init__(
        self, build: Callable[[], click.Command], preview: Callable[[], click.Command]
    ) -> None:
        self.build, self.preview = build, preview


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's commands by name, in the order Typer registers them (commands, then groups);
    each is built by Typer when first looked up, then kept. Iterating gives names only and
    builds nothing; ``values()`` and ``items()`` build every entry."""

    def __init__(self, on_build: Callable[[click.Command], None] | None = None) -> None:
        self._entries: dict[str, click.Command | _Unbuilt] = {}
        self._on_build = on_build

    def add_unbuilt(
        self, name: str, build: Callable[[], click.Command], preview: Callable[[], click.Command]
    ) -> None:
        self._entries[name] = _Unbuilt(build, preview)

    def is_built(self, name: str) -> bool:
        return not isinstance(self._entries[name], _Unbuilt)

    def preview(self, name: str) -> click.Command:
        """The command if built, else a stand-in without options or callback that has what
        a help listing shows: name, help, short help, hidden, deprecated, help panel."""
        entry = self._entries[name]
        if not isinstance(entry, _Unbuilt):
            return entry
        command = entry.preview()
        if self._on_build is not None:
            self._on_build(command)
        return command

    def __getitem__(self, name: str) -> click.Command:
        entry = self._entries[name]
        if isinstance(entry, _Unbuilt):
            entry = entry.build()
            if self._on_build is not None:
                self._on_build(entry)
            self._entries[name] = entry  # same key: the order is kept
        return entry

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._entries[name] = command

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


class _ListsPreviews(TyperGroup):
    """What the lazy groups add to their class: while the group prints its own help, its
    commands are looked up as previews (nothing is built to be listed)."""

    commands: LazyCommands
    _listing = False

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if self._listing and cmd_name in self.commands:
            return self.commands.preview(cmd_name)
        return super().get_command(ctx, cmd_name)


def lazy_typer(app: typer.Typer) -> typer.Typer:
    """A stand-in for ``app`` (the root of a command tree) whose group, and every group below
    it, builds its commands when first asked. ``app`` itself is not changed."""
    options: dict[str, Any] = {
        "pretty_exceptions_short": app.pretty_exceptions_short,
        "rich_markup_mode": app.rich_markup_mode,
    }
    if _TAKES_SUGGEST:
        options["suggest_commands"] = app.suggest_commands
    # The root's class comes from its Typer(...) info, unless its callback names one.
    assert isinstance(getattr(app.registered_callback, "cls", Default(None)), DefaultPlaceholder)
    return _hollow(app, solve_typer_info_defaults(TyperInfo(app)).cls, options)


def _hollow(
    source: typer.Typer, base: type[TyperGroup] | None, options: dict[str, Any]
) -> typer.Typer:
    """A copy of ``source`` without commands, whose class (``base``, subclassed) holds
    ``source``'s commands to be built on demand. Typer builds the group itself (its callback,
    options and help) from the copy as it would from ``source``."""
    hollow = copy.copy(source)
    hollow.registered_commands, hollow.registered_groups = [], []
    hollow.info = copy.copy(source.info)
    hollow.info.cls = _lazy_class(base or TyperGroup, source, options)
    return hollow


def _lazy_class(
    base: type[TyperGroup], source: typer.Typer, options: dict[str, Any]
) -> type[TyperGroup]:
    """``base``, whose instances take their commands from ``source``, each built when first
    looked up."""

    def __init__(group: TyperGroup, **attrs: Any) -> None:
        base.__init__(group, **attrs)
        group.commands = _commands_of(source, options, group)

    namespace = {"__init__": __init__, "__module__": base.__module__}
    return type(base.__name__, (_ListsPreviews, base), namespace)


def _commands_of(source: typer.Typer, options: dict[str, Any], group: TyperGroup) -> LazyCommands:
    """``source``'s commands and groups, named and ordered as Typer names and orders them."""
    tidy = tidy_help if isinstance(group, OpsloopGroup) else None  # what its __init__ does
    commands = LazyCommands(tidy)
    command_options = {k: v for k, v in options.items() if k != "suggest_commands"}
    markup = options["rich_markup_mode"]
    for command_info in source.registered_commands:
        assert command_info.callback is not None, "A command must have a callback function"
        name = command_info.name or get_command_name(command_info.callback.__name__)
        if name:
            build = functools.partial(get_command_from_info, command_info, **command_options)
            preview = functools.partial(_command_preview, name, command_info, markup)
            commands.add_unbuilt(name, build, preview)
    for group_info in source.registered_groups:
        assert group_info.typer_instance is not None
        solved = solve_typer_info_defaults(group_info)
        lazy = copy.copy(group_info)
        lazy.typer_instance = _hollow(group_info.typer_instance, solved.cls, options)
        lazy.cls = lazy.typer_instance.info.cls  # set in add_typer(...): Typer's first choice
        build = functools.partial(get_group_from_info, lazy, **options)
        if solved.name:
            preview = functools.partial(_group_preview, solved, markup)
            commands.add_unbuilt(solved.name, build, preview)
        else:  # a group added without a name lends its commands to this one (Typer's rule)
            for sub_name, sub_command in build().commands.items():
                commands[sub_name] = sub_command
    return commands


def _command_preview(name: str, info: CommandInfo, markup: Any) -> click.Command:
    """What ``get_command_from_info`` makes of ``info``, less its options and callback."""
    help = inspect.getdoc(info.callback) if info.help is None else inspect.cleandoc(info.help)
    return (info.cls or TyperCommand)(
        name=name,
        help=help,
        short_help=info.short_help,
        hidden=info.hidden,
        deprecated=info.deprecated,
        rich_markup_mode=markup,
        rich_help_panel=info.rich_help_panel,
    )


def _group_preview(solved: TyperInfo, markup: Any) -> click.Command:
    """What ``get_group_from_info`` makes of a group, as its parent's help lists it."""
    preview = TyperCommand(
        name=solved.name,
        help=solved.help,
        short_help=solved.short_help,
        hidden=solved.hidden,
        deprecated=solved.deprecated,
        rich_markup_mode=markup,
        rich_help_panel=solved.rich_help_panel,
    )
    if issubclass(solved.cls or TyperGroup, OpsloopGroup):
        tidy_help(preview)  # the group tidies its own help when made
    return preview
