"""Resolving ``NAME@N`` / ``NAME@alias`` / ``NAME`` (latest) to a version row, once for every
kind of numbered thing (dataset versions, model versions, prompt versions).

Each kind has an owner table (the named thing), a versions table numbered per owner, and a
pointer table (aliases or labels) from a name to a number. The errors say which part is missing:
no versions at all, no such alias, or no such number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsloop.errors import NotFound
from opsloop.kernel.refs import LATEST, VersionRef

__all__ = ["Numbering", "version_row"]


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
    version, pointer = numbering.version, numbering.pointer
    owned = getattr(version, numbering.owner_column) == owner_id
    number = ref.number
    if ref.alias == LATEST:
        number = session.scalar(select(func.max(version.number)).where(owned))
        if number is None:
            raise NotFound(f"{numbering.noun} {ref.name!r} has no versions")
    elif ref.alias is not None:
        number = session.scalar(
            select(pointer.number).where(
                getattr(pointer, numbering.owner_column) == owner_id,
                getattr(pointer, numbering.pointer_name) == ref.alias,
            )
        )
        if number is None:
            raise NotFound(
                f"{numbering.noun} {ref.name!r} has no {numbering.pointer_word} {ref.alias!r}"
            )
    row = session.scalars(select(version).where(owned, version.number == number)).first()
    if row is None:
        raise NotFound(f"{numbering.noun} version {ref.name}@{number} does not exist")
    return row
