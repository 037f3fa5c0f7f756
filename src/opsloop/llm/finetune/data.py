"""Chat rows from a data version, checked before any training starts.

The shape is the one ``opsloop feedback export --format sft`` writes and TRL's ``SFTTrainer``
reads: one JSON object a line, ``{"messages": [{"role": ..., "content": ...}, ...]}``, ending
with an assistant turn. A version is one ``.jsonl`` file or a folder of them (read in path
order). A bad row stops the run before the model loads, naming the row and the missing field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.errors import InvalidInput

if TYPE_CHECKING:
    from opsloop.data.sdk import DataClient

__all__ = ["chat_rows", "check_row"]

_ROLES = {"system", "user", "assistant", "tool"}


def chat_rows(data: DataClient, ref: str) -> list[dict[str, Any]]:
    """Every chat in the data version ``ref``.

    Raises:
        NotFound: No such dataset or version.
        InvalidInput: No ``.jsonl`` file, or a row not in the chat shape (named, with its line).
    """
    root = data.get(ref).path()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*.jsonl") if p.is_file())
    if not files:
        raise InvalidInput(f"{ref} holds no .jsonl file; fine-tuning reads chat JSONL")
    rows: list[dict[str, Any]] = []
    for path in files:
        rows.extend(_read(ref, path, root))
    if not rows:
        raise InvalidInput(f"{ref} holds no rows")
    return rows


def _read(ref: str, path: Path, root: Path) -> list[dict[str, Any]]:
    name = path.name if path == root else str(path.relative_to(root))
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{ref} {name} line {number}"
            try:
                row = json.loads(line)
            except ValueError:
                raise InvalidInput(f"{where}: not JSON") from None
            check_row(row, where)
            rows.append({"messages": row["messages"]})
    return rows


def check_row(row: Any, where: str) -> None:
    """Raise ``InvalidInput`` naming the first thing ``row`` lacks to be a chat to train on."""
    if not isinstance(row, dict) or "messages" not in row:
        fields = sorted(row) if isinstance(row, dict) else type(row).__name__
        raise InvalidInput(
            f"{where}: missing field 'messages' (found {fields}); SFT rows are "
            '{"messages": [{"role": ..., "content": ...}, ...]} as `opsloop feedback export` '
            "writes them"
        )
    messages = row["messages"]
    if not isinstance(messages, list) or not messages:
        raise InvalidInput(f"{where}: 'messages' must be a non-empty list of turns")
    for index, turn in enumerate(messages):
        for field in ("role", "content"):
            if not isinstance(turn, dict) or field not in turn:
                raise InvalidInput(f"{where}: messages[{index}] is missing field {field!r}")
        if turn["role"] not in _ROLES:
            raise InvalidInput(
                f"{where}: messages[{index}].role {turn['role']!r} is not one of {sorted(_ROLES)}"
            )
    if messages[-1]["role"] != "assistant":
        raise InvalidInput(f"{where}: the last turn must be the assistant's answer to learn")
