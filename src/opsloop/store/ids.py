"""Ids given as a unique prefix: what the tool prints (8 characters) is accepted back as input.

Every "get/require by id" service resolves the id it is handed with :func:`resolve_id` before
reading the row, so the CLI, the REST API and the SDK accept the same short forms. A full id
is returned unchanged without a query (the caller's primary-key lookup stays the one query); a
shorter one is looked up with ``LIKE 'prefix%'`` (``%`` and ``_`` escaped) and a ``LIMIT``,
which works alike on SQLite and PostgreSQL. :func:`row_by_id` is that resolution and the
primary-key read together, for a table keyed by its ``id`` column.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound

__all__ = ["FULL_ID_LENGTH", "MIN_PREFIX_LENGTH", "resolve_id", "row_by_id"]

MIN_PREFIX_LENGTH = 6
FULL_ID_LENGTH = 32  # uuid4().hex, what every domain's ids are
_HEX = re.compile(r"[0-9a-f]+")  # what every id is made of (uuid4().hex)
_SHOWN = 5  # candidates named in an ambiguity error


def resolve_id(
    session: Session,
    column: Any,
    text: str,
    what: str,
    *,
    full_length: int = FULL_ID_LENGTH,
) -> str:
    """The full id that ``text`` (a full id or a unique prefix of one) stands for.

    Args:
        session: Any session of the store.
        column: The id column, e.g. ``RunRow.id``.
        text: What the user gave. Text that is not lowercase hex cannot start any id and is
            returned unchanged, like a full id (the caller's lookup answers ``NotFound``).
        what: The kind, for messages ("run", "trace", "alert").
        full_length: The length of a full id: ``text`` this long is returned unchanged, without
            a query (the caller's own lookup answers ``NotFound``).

    Raises:
        InvalidInput: ``text`` is not a string, or is hex shorter than ``MIN_PREFIX_LENGTH``.
        NotFound: No id starts with ``text``.
        Conflict: More than one id starts with ``text``; ``details`` carries ``candidates``
            (the first few, sorted) and ``count``.
    """
    if not isinstance(text, str) or not text:
        raise InvalidInput(f"{what} id must be a non-empty string, got {text!r}")
    if len(text) >= full_length or not _HEX.fullmatch(text):
        return text  # a full id, or no id's prefix (ids are hex): the caller's lookup answers
    if len(text) < MIN_PREFIX_LENGTH:
        raise InvalidInput(
            f"{text!r} is not a {what} id: it is too short; give the full id or a prefix of at "
            f"least {MIN_PREFIX_LENGTH} characters",
            details={"min_prefix_length": MIN_PREFIX_LENGTH},
        )
    matching = column.startswith(text, autoescape=True)
    found = list(session.scalars(select(column).where(matching).order_by(column).limit(_SHOWN)))
    if not found:
        raise NotFound(f"{what} {text} does not exist (no {what} id starts with {text!r})")
    if len(found) == 1:
        return str(found[0])
    count = session.scalar(select(func.count()).where(matching))
    shown = ", ".join(found) + (", ..." if count > len(found) else "")
    raise Conflict(
        f"{what} id prefix {text!r} is ambiguous: {count} {what}s match ({shown}); "
        f"give more characters",
        details={"prefix": text, "count": count, "candidates": found},
    )


def row_by_id(session: Session, table: Any, text: str, what: str) -> Any:
    """The row of ``table`` (keyed by its ``id`` column) that ``text``, a full id or a unique
    prefix of one, stands for.

    Raises:
        NotFound: ``"{what} {text!r} does not exist"``, or no id starts with ``text``.
        InvalidInput, Conflict: as :func:`resolve_id` says.
    """
    row = session.get(table, resolve_id(session, table.id, text, what))
    if row is None:
        raise NotFound(f"{what} {text!r} does not exist")
    return row
