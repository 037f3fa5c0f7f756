"""Training rows from a data version, checked before any training starts.

The shapes are the ones ``opsloop feedback export`` writes and TRL's trainers read, one JSON
object a line:

- SFT (``--format sft``, ``SFTTrainer``): ``{"messages": [{"role": ..., "content": ...}, ...]}``,
  ending with an assistant turn.
- Preference (``--format preference``, ``DPOTrainer``): ``{"prompt": [turns...], "chosen":
  [assistant turn], "rejected": [assistant turn]}``; other fields (the export's
  ``score_chosen`` / ``score_rejected``) are left out.

A version is one ``.jsonl`` file or a folder of them (read in path order). A bad row stops the
run before the model loads, naming the row and the missing field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import InvalidInput

if TYPE_CHECKING:
    from opsloop.data.sdk import DataClient

__all__ = ["chat_rows", "check_preference_row", "check_row", "preference_rows"]

_ROLES = {"system", "user", "assistant", "tool"}
_CHAT_SHAPE = (
    'SFT rows are {"messages": [{"role": ..., "content": ...}, ...]} as `opsloop feedback '
    "export` writes them"
)
_PREFERENCE_SHAPE = (
    'DPO rows are {"prompt": [turns], "chosen": [assistant turn], "rejected": [assistant '
    "turn]} as `opsloop feedback export --format preference` writes them"
)
_PREFERENCE_FIELDS = ("prompt", "chosen", "rejected")


def chat_rows(data: DataClient, ref: str) -> list[dict[str, Any]]:
    """Every chat in the data version ``ref``.

    Raises:
        NotFound: No such dataset or version.
        InvalidInput: No ``.jsonl`` file, or a row not in the chat shape (named, with its line).
    """
    return _rows(data, ref, check_row, lambda row: {"messages": row["messages"]})


def preference_rows(data: DataClient, ref: str) -> list[dict[str, Any]]:
    """Every preference pair in the data version ``ref``.

    Raises:
        NotFound: No such dataset or version.
        InvalidInput: No ``.jsonl`` file, or a row not in the preference shape (named, with
            its line).
    """
    return _rows(
        data, ref, check_preference_row, lambda row: {k: row[k] for k in _PREFERENCE_FIELDS}
    )


def _rows(
    data: DataClient,
    ref: str,
    check: Callable[[Any, str], None],
    keep: Callable[[dict[str, Any]], dict[str, Any]],
) -> list[dict[str, Any]]:
    root = data.get(ref).path()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*.jsonl") if p.is_file())
    if not files:
        raise InvalidInput(f"{ref} holds no .jsonl file; fine-tuning reads chat JSONL")
    rows: list[dict[str, Any]] = []
    for path in files:
        name = path.name if path == root else str(path.relative_to(root))
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                where = f"{ref} {name} line {number}"
                try:
                    row = json.loads(line)
                except ValueError:
                    raise InvalidInput(f"{where}: not JSON") from None
                check(row, where)
                rows.append(keep(row))
    if not rows:
        raise InvalidInput(f"{ref} holds no rows")
    return rows


def check_row(row: Any, where: str) -> None:
    """Raise ``InvalidInput`` naming the first thing ``row`` lacks to be a chat to train on."""
    _require(row, ("messages",), where, _CHAT_SHAPE)
    _check_turns(row["messages"], "messages", where)
    if row["messages"][-1]["role"] != "assistant":
        raise InvalidInput(f"{where}: the last turn must be the assistant's answer to learn")


def check_preference_row(row: Any, where: str) -> None:
    """Raise ``InvalidInput`` naming the first thing ``row`` lacks to be a preference pair:
    a prompt of turns, and a chosen and a rejected answer that each end with the assistant's
    turn and differ."""
    _require(row, _PREFERENCE_FIELDS, where, _PREFERENCE_SHAPE)
    _check_turns(row["prompt"], "prompt", where)
    for field in ("chosen", "rejected"):
        _check_turns(row[field], field, where)
        if row[field][-1]["role"] != "assistant":
            raise InvalidInput(f"{where}: the last turn of {field!r} must be the assistant's")
    if row["chosen"] == row["rejected"]:
        raise InvalidInput(f"{where}: 'chosen' and 'rejected' are the same answer")


def _require(row: Any, fields: tuple[str, ...], where: str, shape: str) -> None:
    for field in fields:
        if not isinstance(row, dict) or field not in row:
            found = sorted(row) if isinstance(row, dict) else type(row).__name__
            raise InvalidInput(f"{where}: missing field {field!r} (found {found}); {shape}")


def _check_turns(turns: Any, field: str, where: str) -> None:
    if not isinstance(turns, list) or not turns:
        raise InvalidInput(f"{where}: {field!r} must be a non-empty list of turns")
    for index, turn in enumerate(turns):
        for key in ("role", "content"):
            if not isinstance(turn, dict) or key not in turn:
                raise InvalidInput(f"{where}: {field}[{index}] is missing field {key!r}")
        if turn["role"] not in _ROLES:
            raise InvalidInput(
                f"{where}: {field}[{index}].role {turn['role']!r} is not one of {sorted(_ROLES)}"
            )
