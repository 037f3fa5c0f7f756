"""The quickstart's closing list, as a user copies it out of an 80-column terminal: every
command on one line that the ``opsloop`` command line accepts, and the drift command it
suggests finds the drift the quickstart made."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import click
import typer

OPSLOOP = str(Path(sys.executable).with_name("opsloop"))


def _opsloop(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80", "LINES": "40"}
    done = subprocess.run(
        [OPSLOOP, *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env
    )
    assert done.returncode == 0, done.stderr
    return done


def _parse(argv: list[str]) -> click.Context:
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


def _suggestions(printed: str) -> list[tuple[str, str]]:
    lines = printed.split("Where to look next\n", 1)[1].rstrip("\n").split("\n")
    assert len(lines) % 2 == 0, lines
    return list(zip(lines[::2], lines[1::2], strict=True))


def test_every_suggested_command_is_one_whole_line_and_the_drift_one_finds_drift(
    tmp_path: Path,
) -> None:
    printed = _opsloop("quickstart", "--epochs", "3", cwd=tmp_path).stdout
    pairs = _suggestions(printed)
    assert len(pairs) >= 25
    leaves = set()
    for command, why in pairs:
        assert command.startswith("  opsloop "), command
        assert why.startswith("    # ") and len(why) > len("    # "), why
        argv = shlex.split(command)
        assert "#" not in argv, command  # the explanation is on the next line
        leaves.add(_parse(argv[1:]).command_path)
    # Long ones too: at 80 columns rich used to wrap these mid-argument.
    assert {"opsloop pipelines show", "opsloop runs compare", "opsloop drift"} <= leaves
    assert any(len(command) > 80 for command, _ in pairs)
    compare = next(c for c, _ in pairs if " runs compare " in c).split()
    assert compare[-1] != compare[-2]  # the runner-up, not the best trial twice

    (drift,) = [shlex.split(c) for c, _ in pairs if c.startswith("  opsloop drift ")]
    assert "breast-cancer-live@" in drift[3]  # this run's export, pinned
    report = _opsloop(*drift[1:], cwd=tmp_path).stdout
    assert "dataset: DRIFT" in report
    assert (tmp_path / "drift.html").stat().st_size > 0


def test_parse_refuses_what_the_cli_refuses() -> None:
    """The check above can fail: a misspelt command, an unknown option, a missing argument."""
    for argv in (["runs", "shw", "x"], ["runs", "show", "x", "--nope"], ["drift", "a@1"]):
        try:
            _parse(argv)
        except click.UsageError:
            continue
        raise AssertionError(f"{argv} parsed")
