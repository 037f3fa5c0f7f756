"""Whether a process is still running, for files named after the process that writes them.

A journal or log file carries its writer's pid; whoever finds it decides whether the writer is
gone (its file may be taken over) or still at work (it must be left alone).
"""

from __future__ import annotations

import os

__all__ = ["pid_exists"]


def pid_exists(pid: int) -> bool:
    """Whether a process with this pid exists (on this host). A process owned by another user
    exists too: the kernel refuses the probe rather than denying it is there."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
