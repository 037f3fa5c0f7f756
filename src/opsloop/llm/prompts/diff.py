"""Two prompt versions side by side: each message's lines in two columns, changed lines marked,
and what changed in config, variables and labels.

The services' diff (:func:`opsloop.llm.prompts.services.diff_versions`) is a unified diff of
the whole template, meant for terminals and scripts. A reviewer in the browser reads a chat
prompt better message by message: messages are aligned first (a message inserted at the top
must not make every later one look changed; within a replaced run, a message is paired with the
most alike one), then each aligned pair is diffed line by line.
Pure functions over two :class:`~opsloop.llm.prompts.entities.Prompt` entities, no session.

Example:
    >>> get = client.prompts.get_version
    >>> side = compare(get("answer@1"), get("answer@2"))
    >>> [line.kind for block in side.blocks for line in block.lines]
    ['same', 'changed', 'added']
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any
from typing import Literal

from opsloop.llm.prompts.entities import Prompt

__all__ = ["Block", "ConfigChange", "Line", "SideBySide", "compare", "side_by_side"]

LineKind = Literal["same", "changed", "removed", "added"]
SIMILAR = 0.5  # how alike two messages must be (difflib's ratio) to be shown as one edited


@dataclass(frozen=True)
class Line:
    """One row of the two columns; a side is None where the row has no line on that side."""

    kind: LineKind
    old_number: int | None
    old: str | None
    new_number: int | None
    new: str | None


@dataclass(frozen=True)
class Block:
    """One message (or a text prompt's text) of both versions, aligned.

    ``old_role`` / ``new_role`` are None on the side that lacks the message (added or
    removed), and ``text`` for a text prompt's template.
    """

    old_role: str | None
    new_role: str | None
    lines: list[Line]

    @property
    def changed(self) -> bool:
        return self.old_role != self.new_role or any(line.kind != "same" for line in self.lines)


@dataclass(frozen=True)
class ConfigChange:
    key: str
    old: Any
    new: Any


@dataclass(frozen=True)
class SideBySide:
    """Everything that differs from ``old`` to ``new``, ready for a two-column page."""

    old: Prompt
    new: Prompt
    blocks: list[Block]
    config: list[ConfigChange]
    variables_added: list[str]
    variables_removed: list[str]
    labels_added: list[str]  # labels on ``new`` that ``old`` does not carry
    labels_removed: list[str]

    @property
    def identical(self) -> bool:
        """No difference in template, config or variables (labels aside)."""
        return not (
            any(b.changed for b in self.blocks)
            or self.config
            or self.variables_added
            or self.variables_removed
        )


def side_by_side(old: str, new: str) -> list[Line]:
    """``old`` and ``new`` as rows of two columns: unchanged lines side by side, a replaced run
    paired line by line (``changed``), and the longer side's extra lines ``removed`` / ``added``."""
    a, b = old.splitlines(), new.splitlines()
    rows: list[Line] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs = zip(range(i1, i2), range(j1, j2), strict=True)
            rows += [Line("same", i + 1, a[i], j + 1, b[j]) for i, j in pairs]
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + k, j1 + k
            has_old, has_new = i < i2, j < j2
            kind: LineKind = "changed" if has_old and has_new else "removed" if has_old else "added"
            rows.append(
                Line(
                    kind,
                    i + 1 if has_old else None,
                    a[i] if has_old else None,
                    j + 1 if has_new else None,
                    b[j] if has_new else None,
                )
            )
    return rows


def _parts(prompt: Prompt) -> list[tuple[str, str]]:
    """``(role, content)`` of each message; a text prompt is one part with the role ``text``."""
    if prompt.type == "text":
        return [("text", prompt.text or "")]
    return [(m.role, m.content) for m in prompt.messages or []]


def _similar(a: str, b: str) -> bool:
    """Whether ``b`` reads as an edit of ``a`` rather than another message (the quick upper
    bounds first: most pairs of unrelated messages stop there)."""
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return all(
        bound() >= SIMILAR
        for bound in (matcher.real_quick_ratio, matcher.quick_ratio, matcher.ratio)
    )


Pairs = list[tuple[int | None, int | None]]


def _pair(old: list[str], new: list[str]) -> Pairs:
    """Pair the messages of a replaced run, in reading order. As many on both sides: each was
    edited in place. Otherwise the longest in-order chain of alike pairs, the others alone
    (removed or added)."""
    n, m = len(old), len(new)
    if n == m:
        return [(k, k) for k in range(n)]
    alike = [[_similar(a, b) for b in new] for a in old]
    best = [[0] * (m + 1) for _ in range(n + 1)]  # best[i][j]: pairs within old[i:], new[j:]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            paired = best[i + 1][j + 1] + 1 if alike[i][j] else 0
            best[i][j] = max(best[i + 1][j], best[i][j + 1], paired)
    pairs: Pairs = []
    i = j = 0
    while i < n or j < m:
        if i < n and j < m and alike[i][j] and best[i][j] == best[i + 1][j + 1] + 1:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif i < n and (j == m or best[i][j] == best[i + 1][j]):
            pairs.append((i, None))
            i += 1
        else:
            pairs.append((None, j))
            j += 1
    return pairs


def _blocks(old: list[tuple[str, str]], new: list[tuple[str, str]]) -> list[Block]:
    blocks: list[Block] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for _, i1, i2, j1, j2 in matcher.get_opcodes():
        run = _pair([text for _, text in old[i1:i2]], [text for _, text in new[j1:j2]])
        for i, j in run:
            old_role, old_text = old[i1 + i] if i is not None else (None, "")
            new_role, new_text = new[j1 + j] if j is not None else (None, "")
            blocks.append(Block(old_role, new_role, side_by_side(old_text, new_text)))
    return blocks


def compare(old: Prompt, new: Prompt) -> SideBySide:
    """What differs from ``old`` to ``new``: messages aligned and diffed line by line, config
    keys (only those that changed), variables and labels."""
    keys = sorted(old.config.keys() | new.config.keys())
    config = [
        ConfigChange(k, old.config.get(k), new.config.get(k))
        for k in keys
        if old.config.get(k) != new.config.get(k) or (k in old.config) != (k in new.config)
    ]
    return SideBySide(
        old=old,
        new=new,
        blocks=_blocks(_parts(old), _parts(new)),
        config=config,
        variables_added=sorted(set(new.variables) - set(old.variables)),
        variables_removed=sorted(set(old.variables) - set(new.variables)),
        labels_added=sorted(set(new.labels) - set(old.labels)),
        labels_removed=sorted(set(old.labels) - set(new.labels)),
    )
