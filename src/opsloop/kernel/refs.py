"""Names and version references of versioned things: ``NAME``, ``NAME@3``, ``NAME@latest``,
``NAME@champion``. Datasets and registered models share the grammar.

``latest`` is implicit (the highest number) and cannot be set; any other alias is a pointer a
person moves on purpose. A bare name means ``latest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from opsloop.errors import InvalidInput
from opsloop.kernel.bounds import INT64_MAX
from opsloop.kernel.bounds import is_ascii_int

__all__ = ["LATEST", "VersionRef", "check_alias", "check_dataset_name", "check_name", "parse_ref"]

LATEST = "latest"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,249}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def check_name(name: str, noun: str = "dataset") -> str:
    """Return ``name`` if it is a valid dataset (or model) name, else raise ``InvalidInput``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"invalid {noun} name {name!r}: use letters, digits, '.', '_' and '-' "
            "(up to 250 characters, starting with a letter or digit)"
        )
    return name


def check_dataset_name(name: str) -> str:
    return check_name(name, "dataset")


def check_alias(alias: str) -> str:
    """Return ``alias`` if it can be set by a person (not a number, not ``latest``)."""
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise InvalidInput(
            f"invalid alias {alias!r}: start with a letter; letters, digits, '_' and '-' only"
        )
    if alias == LATEST:
        raise InvalidInput("'latest' always means the newest version and cannot be moved")
    return alias


@dataclass(frozen=True)
class VersionRef:
    """A parsed reference: a name and either a version number or an alias."""

    name: str
    number: int | None = None
    alias: str | None = None

    @property
    def selector(self) -> int | str | None:
        """What follows the ``@``: the number, else the alias (``latest`` included)."""
        return self.number if self.number is not None else self.alias

    def route_params(self) -> dict[str, object]:
        """What a version's REST route (``.../{name}/versions/{selector}``) is filled in with."""
        return {"name": self.name, "selector": self.selector}

    def __str__(self) -> str:
        return f"{self.name}@{self.selector}"


def parse_ref(ref: str, noun: str = "dataset") -> VersionRef:
    """Parse ``NAME[@N|@ALIAS]``; a bare name means ``NAME@latest``. ``N`` is ASCII digits
    (``²`` and ``٣`` are neither numbers nor aliases) and fits in 64 bits."""
    if not isinstance(ref, str) or not ref:
        raise InvalidInput(f"a {noun} version reference looks like NAME, NAME@3 or NAME@alias")
    name, sep, selector = ref.partition("@")
    check_name(name, noun)
    if not sep or selector == LATEST:
        return VersionRef(name, alias=LATEST)
    if is_ascii_int(selector):
        number = int(selector)
        if not 1 <= number <= INT64_MAX:
            raise InvalidInput(
                f"invalid version in {ref!r}: versions are numbered from 1 to {INT64_MAX}"
            )
        return VersionRef(name, number=number)
    if not _ALIAS.match(selector):
        raise InvalidInput(
            f"invalid version reference {ref!r}: use NAME@N (a number) or NAME@ALIAS"
        )
    return VersionRef(name, alias=selector)
