"""The global search box's usual answer, written once: a domain's named things whose name contains
the text.

Most domains answer the search box the same way (up to 20 names, in name order, each linking to
its page); they describe their table's columns here instead of each writing the query.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.web.shell import SearchHit

__all__ = ["find_by_name"]

LIMIT = 20


def find_by_name(
    kind: str, name: Any, href: str, detail: Any = None
) -> Callable[[Session, str], list[SearchHit]]:
    """A ``UiDomain.find`` over the column ``name``: hits link to ``{href}/{name}`` and show the
    column ``detail`` beside the name (the name itself when there is none)."""

    def find(session: Session, text: str) -> list[SearchHit]:
        columns = [name] if detail is None else [name, detail]
        rows = session.execute(
            select(*columns)
            .where(name.icontains(text, autoescape=True))
            .order_by(name)
            .limit(LIMIT)
        )
        return [SearchHit(kind, row[0], f"{href}/{row[0]}", row[-1]) for row in rows]

    return find
