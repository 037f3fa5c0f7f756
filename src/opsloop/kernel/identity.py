"""Who is acting: the name recorded as the author of what a call creates.

On the embedded store it is the OS user; a server records the user it authenticated instead.
"""

from __future__ import annotations

import functools
import getpass

__all__ = ["current_user"]


@functools.cache
def current_user() -> str:
    """The OS user, recorded as the creator when the caller names no one (looked up once)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
