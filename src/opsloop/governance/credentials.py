"""Where ``opsloop login`` keeps the key it got: ``server_url`` and ``token`` in the user's own
``$OPSLOOP_HOME/opsloop.toml`` (``~/.opsloop/opsloop.toml``), the file every settings load
already reads (:func:`opsloop.config.load_settings`). The SDK and every command then talk to
that server as that user with nothing else to set, and an ``OPSLOOP_TOKEN`` variable or a
project's own ``opsloop.toml`` still wins over it, as they win over any home setting.

The file is edited, not rewritten: the two keys are replaced where they are (or added at the
top, before any table), every other line and comment stays, the result must still parse, and
the file is readable by its owner only (it holds a secret).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from opsloop.errors import InvalidInput

__all__ = ["save_login", "shadowed_by"]

_KEY_LINE = re.compile(r"\s*(server_url|token)\s*=")


def save_login(home: Path, server_url: str, token: str) -> Path:
    """Set ``server_url`` and ``token`` in ``home``'s ``opsloop.toml``; its path.

    Raises:
        InvalidInput: The file exists and is not valid TOML (it is left as it was).
    """
    path = home / "opsloop.toml"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path} is not valid TOML ({exc}): fix it, then log in again") from None
    wanted = {"server_url": server_url, "token": token}
    lines, top_level = [], True
    for line in text.splitlines():
        if line.lstrip().startswith("["):
            top_level = False
        found = _KEY_LINE.match(line) if top_level else None
        if found is None:
            lines.append(line)
        elif found.group(1) in wanted:
            lines.append(f"{found.group(1)} = {json.dumps(wanted.pop(found.group(1)))}")
    added = [f"{name} = {json.dumps(value)}" for name, value in wanted.items()]
    result = "\n".join([*added, *lines]) + "\n"
    tomllib.loads(result)  # JSON strings are TOML basic strings: this holds, checked anyway
    home.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(".opsloop.toml.part")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(result)
    os.chmod(temporary, 0o600)  # O_CREAT's mode does not apply to a file left from before
    temporary.replace(path)
    return path


def shadowed_by(home: Path, environ: Mapping[str, str]) -> str | None:
    """What would hide the key saved in ``home`` from the next command: ``OPSLOOP_TOKEN`` or a
    project's ``opsloop.toml`` with its own token (None: nothing)."""
    if environ.get("OPSLOOP_TOKEN"):
        return "the OPSLOOP_TOKEN variable"
    local = Path(environ.get("OPSLOOP_CONFIG") or "opsloop.toml")
    if local.resolve() == (home / "opsloop.toml").resolve():
        return None
    try:
        with local.open("rb") as fh:
            if "token" in tomllib.load(fh):
                return f"the token in {local}"
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return None
