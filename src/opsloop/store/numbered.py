"""Resolving ``NAME@N`` / ``NAME@alias`` / ``NAME`` (latest) to a version row, once for every
kind of numbered thing (dataset versions, model versions, prompt versions).

Each kind has an owner table (the named thing), a versions table numbered per owner, and a
pointer table (aliases or labels) from a name to a number. The errors say which part is missing:
no versions at all, no such alias, or no such number. The other reads every kind needs (what an
alias holds, which aliases hold a number, a page of versions newest first, how a version reads
in a lineage walk) live here too, so each kind states its tables once, in its ``Numbering``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import NotFound
from opsloop.kernel.paging import split_page
from opsloop.kernel.refs import LATEST
from opsloop.kernel.refs import VersionRef

__all__ = [
    "Numbering",
    "aliases_at",
    "lineage_label",
    "newest_versions",
    "pointed_number",
    "version_row",
]


@dataclass(frozen=True)
class Numbering:
    """Where a kind's versions and pointers live (ORM classes and their columns' names)."""

    noun: str
    version: Any  # the versions' ORM class
    owner_column: str  # its column holding the owner's id
    pointer: Any  # the aliases' (or labels') ORM class
    pointer_name: str  # its column holding the alias or label
    pointer_word: str = "alias"


def version_row(session: Session, numbering: Numbering, ref: VersionRef, owner_id: str) -> Any:
    """The version row ``ref`` names among ``owner_id``'s versions, or ``NotFound``."""
    version = numbering.version
    owned = getattr(version, numbering.owner_column) == owner_id
    number = ref.number
    if ref.alias == LATEST:
        number = session.scalar(select(func.max(version.number)).where(owned))
        if number is None:
            raise NotFound(f"{numbering.noun} {ref.name!r} has no versions")
    elif ref.alias is not None:
        number = pointed_number(session, numbering, owner_id, ref.alias)
        if number is None:
            raise NotFound(
                f"{numbering.noun} {ref.name!r} has no {numbering.pointer_word} {ref.alias!r}"
            )
    row = session.scalars(select(version).where(owned, version.number == number)).first()
    if row is None:
        raise NotFound(f"{numbering.noun} version {ref.name}@{number} does not exist")
    return row


def pointed_number(session: Session, numbering: Numbering, owner_id: str, name: str) -> int | None:
    """The number the alias (or label) ``name`` of ``owner_id`` points at, or ``None``."""
    pointer = numbering.pointer
    return session.scalar(
        select(pointer.number).where(
            getattr(pointer, numbering.owner_column) == owner_id,
            getattr(pointer, numbering.pointer_name) == name,
        )
    )


def aliases_at(session: Session, numbering: Numbering, owner_id: str, number: int) -> list[str]:
    """The aliases (or labels) of ``owner_id`` that point at version ``number``, sorted."""
    pointer = numbering.pointer
    name = getattr(pointer, numbering.pointer_name)
    return list(
        session.scalars(
            select(name)
            .where(getattr(pointer, numbering.owner_column) == owner_id, pointer.number == number)
            .order_by(name)
        )
    )


def lineage_label(
    session: Session, numbering: Numbering, owner: Any, version_id: str, word: str
) -> dict[str, Any]:
    """How a version appears in a lineage walk: ``WORD NAME@N`` (``{}`` once it is gone);
    ``owner`` is the owners' ORM class (with ``name``)."""
    row = session.get(numbering.version, version_id)
    parent = session.get(owner, getattr(row, numbering.owner_column)) if row is not None else None
    if row is None or parent is None:
        return {}
    ref = f"{parent.name}@{row.number}"
    return {"ref": ref, "label": f"{word} {ref}"}


def newest_versions(
    session: Session, numbering: Numbering, owner_id: str, offset: int, max_results: int
) -> tuple[list[Any], str | None]:
    """A page of ``owner_id``'s version rows, newest first, and the next page's token."""
    version = numbering.version
    rows = session.scalars(
        select(version)
        .where(getattr(version, numbering.owner_column) == owner_id)
        .order_by(version.number.desc())
        .offset(offset)
        .limit(max_results + 1)
    ).all()
    return split_page(rows, offset, max_results)
