"""One rule for the relative paths every manifest holds (artifacts, dataset files, packages).

A path stored in the metadata store is later written to some user's disk (checkout, artifact
download, model load), on Linux, macOS or Windows. So the rule refuses here, once, anything
that could not be written back faithfully everywhere or could escape the destination folder:
absolute paths, drive letters, ``..``, backslashes, NUL and other control characters, parts
that are empty or only blanks, and paths longer than the bound. A path that passes is returned
in its one normal form (``./a//b`` becomes ``a/b``).
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from opsloop.errors import InvalidInput

__all__ = ["MAX_PATH_LENGTH", "check_relative_path"]

MAX_PATH_LENGTH = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def check_relative_path(path: Any, what: str, *, max_length: int = MAX_PATH_LENGTH) -> str:
    """``path`` in its normal form, or :class:`InvalidInput` saying what is wrong with it.

    Args:
        path: What the client sent.
        what: How messages name it ("artifact path", "manifest path").
        max_length: The longest normal form accepted.
    """
    if not isinstance(path, str) or not path:
        raise InvalidInput(f"{what} must be a non-empty string, got {path!r}")
    shown = repr(path if len(path) <= 80 else path[:77] + "...")
    if "\\" in path or _CONTROL.search(path):
        raise InvalidInput(f"{what} {shown} contains a backslash, NUL or control character")
    if path.startswith("/") or _DRIVE.match(path):
        raise InvalidInput(f"{what} {shown} is absolute; give a relative path")
    parts = path.split("/")
    if ".." in parts:
        raise InvalidInput(f"{what} {shown} escapes its folder ('..')")
    if any(part and not part.strip() for part in parts):
        raise InvalidInput(f"{what} {shown} has a part made only of blanks")
    normal = posixpath.normpath(path)
    if normal in (".", ""):
        raise InvalidInput(f"{what} {shown} names no file")
    if len(normal) > max_length:
        raise InvalidInput(
            f"{what} {shown} is {len(normal)} characters long; the limit is {max_length}"
        )
    return normal
