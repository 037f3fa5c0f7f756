"""The parser that checks the quickstart's suggested commands (tests/cli/quickstart_lines.py)
can fail. The check itself runs on the quickstart that test_cli.py's
``test_quickstart_then_explore`` starts, so the suite runs the quickstart once for both."""

from __future__ import annotations

import click

from tests.cli.quickstart_lines import parse


def test_parse_refuses_what_the_cli_refuses() -> None:
    """A misspelt command, an unknown option, a missing argument."""
    for argv in (["runs", "shw", "x"], ["runs", "show", "x", "--nope"], ["drift", "a@1"]):
        try:
            parse(argv)
        except click.UsageError:
            continue
        raise AssertionError(f"{argv} parsed")
