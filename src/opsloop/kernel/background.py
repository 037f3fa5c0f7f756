"""Process hooks for the SDK's background senders (metric buffer, span exporter).

A sender registered here is flushed at interpreter exit (which also covers an unhandled
exception) and on SIGTERM, and is told to forget its queue in a forked child, which has no
sender thread and must not send the parent's data twice. The hooks are installed once per
process, SIGTERM only if nobody else handles it.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
import weakref
from typing import Any
from typing import Protocol

__all__ = ["BackgroundSender", "register"]


class BackgroundSender(Protocol):
    def _flush_at_exit(self) -> None: ...

    def _after_fork(self) -> None: ...


_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()
_HOOKS_INSTALLED = False


def _flush_all_at_exit() -> None:
    for sender in list(_LIVE):
        sender._flush_at_exit()


def _after_fork_in_child() -> None:
    for sender in list(_LIVE):
        sender._after_fork()


def _on_sigterm(signum: int, _frame: Any) -> None:
    _flush_all_at_exit()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def register(sender: BackgroundSender) -> None:
    """Flush ``sender`` at exit and on SIGTERM; reset it in forked children."""
    global _HOOKS_INSTALLED
    _LIVE.add(sender)
    if _HOOKS_INSTALLED:
        return
    _HOOKS_INSTALLED = True
    atexit.register(_flush_all_at_exit)
    os.register_at_fork(after_in_child=_after_fork_in_child)
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
