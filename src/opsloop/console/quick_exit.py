"""Ending the ``opsloop`` command without the interpreter's teardown.

When a command returns, CPython finalizes: it clears every module's namespace and frees the
objects one by one, then collects what is left. After a command that imported SQLAlchemy,
pydantic and rich that took 40-150 ms (about a tenth of ``monitors check``, a fifth of a
listing command), all of it freeing memory the OS takes back at once at exit anyway.

:func:`exit_without_teardown` ends the process with ``os._exit`` once everything Python
promises at exit has happened: non-daemon threads joined (the interpreter does that before
``atexit``), every ``atexit`` handler registered during the command run (this one is
registered first, so it runs last), the standard streams flushed, the exit status the same.

What it would skip is finalizing the objects still alive at exit: a file that a module opened
and never closed is flushed only as it is freed. opsloop's own modules close what they open;
user code (a pipeline's steps, a custom model's module) may not, so when any module from
outside the installed packages was imported, or the command ended any other way than with
``SystemExit`` (Ctrl-C: the interpreter then ends by SIGINT, as a shell expects), the
interpreter ends as usual.
"""

from __future__ import annotations

import atexit
import os
import site
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["exit_without_teardown"]


class _Ending:
    """The status the process ends with, once the command has raised ``SystemExit``."""

    status: int | None = None


@contextmanager
def exit_without_teardown() -> Iterator[None]:
    """Run the command inside; when it raises ``SystemExit`` the process ends right after the
    ``atexit`` handlers, without the interpreter's teardown (see the module's text). Enter it
    first, before anything registers an ``atexit`` handler."""
    ending = _Ending()
    atexit.register(_end, ending)
    try:
        yield
    except SystemExit as exc:
        ending.status = _status(exc.code)
        raise


def _status(code: object) -> int:
    """The exit status the interpreter gives ``SystemExit(code)``: 0 for None, the number, or
    1 for anything else (it prints that to stderr first)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1


def _end(ending: _Ending) -> None:
    if ending.status is None or not _only_installed_code():
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(ending.status)


def _only_installed_code() -> bool:
    """Whether every module imported comes from the installed packages (the environment's
    prefixes, the site folders, opsloop's own, wherever it is installed): none is user code
    that may rely on being finalized."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             str(Path(os.path.abspath(__file__)).parents[2]), *site.getsitepackages()}  # fmt: skip
    if site.ENABLE_USER_SITE:
        roots.add(site.getusersitepackages())
    installed = tuple(os.path.join(root, "") for root in roots)  # a folder, not a name prefix
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and not os.path.abspath(file).startswith(installed):
            return False
    return True
