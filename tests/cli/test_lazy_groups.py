"""The command tree ``opsloop`` runs on, whose commands are built when first reached
(``console/lazy_groups.py``), is the tree Typer builds eagerly: same names in the same order,
options, arguments, help texts and flags, same help printed, and a group builds only what is
asked of it (issue 22, "Everyday speed")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click
import pytest
import typer
from click.testing import CliRunner

from opsloop.console.lazy_groups import LazyCommands
from opsloop.console.lazy_groups import lazy_typer


@pytest.fixture(scope="module")
def trees() -> tuple[click.Group, click.Group]:
    """(eager, lazy): every group added, as ``opsloop --help`` adds them."""
    from opsloop.app import cli

    cli.register_commands([])
    eager, lazy = typer.main.get_command(cli.app), typer.main.get_command(lazy_typer(cli.app))
    assert isinstance(eager, click.Group) and isinstance(lazy, click.Group)
    return eager, lazy


def described(
    command: click.Command, path: tuple[str, ...] = (), parent: click.Context | None = None
) -> Iterator[Any]:
    """What a user can see of each command, depth first (Click's own description of a
    command, plus the aliases a group answers), in contexts made as a run makes them (so that
    the help option's names come from the root's settings)."""
    settings = command.context_settings if parent is None else {}
    name = path[-1] if path else "opsloop"
    with click.Context(command, info_name=name, parent=parent, **settings) as ctx:
        info = command.to_info_dict(ctx)
        info.pop("commands", None)
        yield path, type(command), info, getattr(command, "aliases", None)
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                yield from described(command.commands[sub], (*path, sub), ctx)


def test_the_lazy_tree_is_the_eager_tree(trees: tuple[click.Group, click.Group]) -> None:
    eager, lazy = trees
    seen = 0
    for left, right in zip(described(eager), described(lazy), strict=True):
        assert left[0] == right[0]  # the path: same names, same order
        assert left[2] == right[2], left[0]
        assert left[3] == right[3], left[0]
        assert issubclass(right[1], left[1]), left[0]  # the group's class, or one above it
        seen += 1
    assert seen > 150


def group_paths(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from group_paths(command, (*path, name))


def test_every_group_prints_the_same_help_and_typo_errors(
    trees: tuple[click.Group, click.Group],
) -> None:
    """Each group's help lists its commands from previews: the same text as from the built
    commands. A fresh lazy tree per call, so that each help is printed from previews."""
    from opsloop.app import cli

    eager, _ = trees
    paths = list(group_paths(eager))
    assert len(paths) > 15
    calls = [[*path, "--help"] for path in paths]
    calls += [["runs", "lst"], ["pipelines", "xyzzy"], ["models", "show", "--help"], ["--version"]]
    for args in calls:
        printed = []
        for root in (eager, typer.main.get_command(lazy_typer(cli.app))):
            done = CliRunner().invoke(root, args, env={"COLUMNS": "120"}, prog_name="opsloop")
            printed.append((done.exit_code, done.output))
        assert printed[0] == printed[1], args
        assert printed[0][1], args


def test_a_group_builds_only_the_command_asked_for() -> None:
    from opsloop.app import cli

    cli.register_commands(["models"])
    root = typer.main.get_command(lazy_typer(cli.app))
    assert isinstance(root, click.Group) and isinstance(root.commands, LazyCommands)
    assert not root.commands.is_built("models")
    models = root.commands["models"]
    assert isinstance(models, click.Group) and isinstance(models.commands, LazyCommands)
    assert "show" in models.commands and len(models.commands) > 10
    models.commands["show"]
    assert [n for n in models.commands if models.commands.is_built(n)] == ["show"]
    assert getattr(models.commands["show"], "_opsloop_source_help", None)  # tidied as built
    CliRunner().invoke(root, ["models", "--help"], env={"COLUMNS": "120"})
    assert [n for n in models.commands if models.commands.is_built(n)] == ["show"]
