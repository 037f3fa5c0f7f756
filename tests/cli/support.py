"""``opsloop ARGS`` run in this process, for tests that call the command many times.

A subprocess per call paid a Python start and the imports of each command (and, for ``eval
run``, loading the embedding model again) every time; through :func:`opsloop.app.cli.main`
each call gets the same parsing, output and error-to-exit-code mapping as the installed
command. Tests keep one real subprocess where the point is the installed command itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pytest

__all__ = ["Done", "in_process"]


class Done(NamedTuple):
    """What one call left: its exit code and what it printed on stdout and stderr."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def in_process(capsys: pytest.CaptureFixture[str]) -> Callable[..., Done]:
    """A ``run(*args, code=0)`` that calls ``opsloop ARGS`` through ``main`` and asserts its
    exit code (``code=None`` accepts any)."""
    from opsloop.app.cli import main

    def run(*args: str, code: int | None = 0) -> Done:
        capsys.readouterr()  # what the test printed before is not this call's output
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        out, err = capsys.readouterr()
        done = Done(int(exited.value.code or 0), out, err)
        assert code is None or done.returncode == code, (args, done)
        return done

    return run
