"""MLflow's search filters for the registry and logged models, evaluated over opsloop entities.

MLflow's client sends ``filter_string``s such as ``name = 'churn'``, ``name LIKE 'ch%'``,
``tags.team = 'risk' AND run_id IN ('a', 'b')`` or ``version_number >= 3``: clauses joined by
``AND``, each ``KEY OP VALUE``. :func:`parse_filter` turns one into clauses, and
:func:`matches` tests an entity's fields against them (the registry's searches are over models
and versions a registry holds, a few thousand at most, so filtering the listing is enough);
:func:`field_of` reads a key off an entity, and a :class:`Search` sorts and pages what matched.
A key the search does not know, an operator outside MLflow's, or a malformed clause is
``InvalidInput`` naming it, so MLflow's client raises ``INVALID_PARAMETER_VALUE``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import TypeVar

from opsloop.errors import InvalidInput
from opsloop.kernel.paging import decode_page_token
from opsloop.kernel.paging import encode_page_token

__all__ = ["Clause", "Search", "field_of", "matches", "parse_filter", "sort_key"]

T = TypeVar("T")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>!=|>=|<=|=|>|<|\(|\)|,)
      | (?P<key>(?:[A-Za-z_][\w]*\.)?(?:`[^`]+`|[A-Za-z_][\w.\-]*))
    )""",
    re.VERBOSE,
)
_WORD_OPS = {"LIKE", "ILIKE", "IN", "NOT", "AND"}


@dataclass(frozen=True)
class Clause:
    """``key op value``: ``key`` is ``name``, ``tags.<k>``, ``params.<k>``...; ``value`` is a
    string, a number, or a list of strings for ``IN`` / ``NOT IN``."""

    key: str
    op: str
    value: Any


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        found = _TOKEN.match(text, pos)
        if found is None or found.end() == pos:
            raise InvalidInput(f"cannot parse the filter {text!r} at {text[pos : pos + 20]!r}")
        kind = found.lastgroup or ""
        value = found.group(kind)
        if kind == "key" and value.upper() in _WORD_OPS:
            kind, value = "op", value.upper()
        out.append((kind, value))
        pos = found.end()
    return out


def _literal(kind: str, value: str, text: str) -> Any:
    if kind == "string":
        quote = value[0]
        return value[1:-1].replace(quote * 2, quote)
    if kind == "number":
        return float(value) if "." in value else int(value)
    raise InvalidInput(f"expected a quoted value or a number in the filter {text!r}, got {value!r}")


_PREFIXES = {"tag": "tags", "param": "params"}  # MLflow accepts both spellings


def _key(value: str) -> str:
    prefix, dot, rest = value.partition(".")
    if not dot:
        return value.strip("`")
    return f"{_PREFIXES.get(prefix.lower(), prefix.lower())}.{rest.strip('`')}"


def parse_filter(text: str | None, keys: Sequence[str]) -> list[Clause]:
    """The clauses of ``text`` (None or blank: none). ``keys`` are the attribute names the
    search knows; ``tags.*`` and ``params.*`` are known when listed as ``"tags."`` /
    ``"params."``."""
    if not text or not text.strip():
        return []
    tokens = _tokens(text)
    clauses: list[Clause] = []
    i = 0
    while i < len(tokens):
        if clauses:
            if tokens[i] != ("op", "AND"):
                raise InvalidInput(f"clauses of the filter {text!r} must be joined by AND")
            i += 1
        if i >= len(tokens):
            raise InvalidInput(f"the filter {text!r} ends after AND")
        kind, raw = tokens[i]
        if kind != "key":
            raise InvalidInput(f"expected a field name in the filter {text!r}, got {raw!r}")
        key = _key(raw)
        prefix = key.split(".", 1)[0] + "." if "." in key else None
        if key not in keys and (prefix is None or prefix not in keys):
            raise InvalidInput(
                f"the filter {text!r} names {key!r}; this search filters on {sorted(keys)}"
            )
        i += 1
        if i >= len(tokens):
            raise InvalidInput(f"the filter {text!r} ends after {raw!r}")
        op = tokens[i][1]
        if op == "NOT" and i + 1 < len(tokens) and tokens[i + 1] == ("op", "IN"):
            op, i = "NOT IN", i + 1
        i += 1
        if op in ("IN", "NOT IN"):
            values, i = _value_list(tokens, i, text)
            clauses.append(Clause(key, op, values))
            continue
        if op not in ("=", "!=", ">", ">=", "<", "<=", "LIKE", "ILIKE") or i >= len(tokens):
            raise InvalidInput(f"unsupported comparison {op!r} in the filter {text!r}")
        clauses.append(Clause(key, op, _literal(*tokens[i], text)))
        i += 1
    return clauses


def _value_list(tokens: list[tuple[str, str]], i: int, text: str) -> tuple[list[Any], int]:
    if i >= len(tokens) or tokens[i] != ("op", "("):
        raise InvalidInput(f"IN needs a parenthesised list in the filter {text!r}")
    values: list[Any] = []
    i += 1
    while i < len(tokens) and tokens[i] != ("op", ")"):
        if tokens[i] == ("op", ","):
            i += 1
            continue
        values.append(_literal(*tokens[i], text))
        i += 1
    if i >= len(tokens):
        raise InvalidInput(f"unclosed list in the filter {text!r}")
    return values, i + 1


def _like(pattern: str, value: str, ignore_case: bool) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    flags = re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL
    return re.fullmatch(regex, value, flags) is not None


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "IN":
        return actual is not None and str(actual) in {str(v) for v in expected}
    if op == "NOT IN":
        return actual is None or str(actual) not in {str(v) for v in expected}
    if actual is None:
        return op == "!="
    if op in ("LIKE", "ILIKE"):
        return _like(str(expected), str(actual), op == "ILIKE")
    if isinstance(expected, (int, float)) and not isinstance(actual, (int, float)):
        try:
            actual = float(actual)
        except ValueError:
            return False
    elif isinstance(actual, (int, float)) and isinstance(expected, str):
        actual = str(actual)
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
    }
    return comparisons[op](actual, expected)


def matches(clauses: Sequence[Clause], field: Callable[[str], Any]) -> bool:
    """Whether every clause holds; ``field(key)`` is the entity's value for a key (None when
    it has none: a missing tag matches only ``!=`` and ``NOT IN``)."""
    return all(_compare(c.op, field(c.key), c.value) for c in clauses)


def sort_key(order_by: Sequence[str], known: Sequence[str]) -> list[tuple[str, bool]]:
    """MLflow's ``order_by`` entries (``"name ASC"``, ``"version_number DESC"``) as
    ``(field, descending)``; ``InvalidInput`` for a field outside ``known``."""
    out = []
    for entry in order_by:
        parts = entry.split()
        direction = parts[1].upper() if len(parts) == 2 else "ASC"
        if not parts or len(parts) > 2 or direction not in ("ASC", "DESC"):
            raise InvalidInput(f"cannot parse order_by {entry!r}: use 'FIELD [ASC|DESC]'")
        field = parts[0].strip("`")
        if field not in known:
            raise InvalidInput(f"cannot order by {field!r}; one of {sorted(known)}")
        out.append((field, direction == "DESC"))
    return out


def field_of(key: str, attributes: Mapping[str, Any], **keyed: Mapping[str, str]) -> Any:
    """The value a filter or ordering ``key`` names: ``tags.<k>`` (or another prefix given in
    ``keyed``, such as ``params``) in that mapping, else the attribute; None when missing."""
    prefix, dot, rest = key.partition(".")
    if dot and prefix in keyed:
        return keyed[prefix].get(rest)
    return attributes.get(key)


@dataclass(frozen=True)
class Search:
    """What one MLflow search asks for: its ``filter_string``, ``order_by`` entries and page."""

    filter: str | None
    order_by: Sequence[str]
    max_results: int
    page_token: str | None

    def clauses(self, keys: Sequence[str]) -> list[Clause]:
        """The filter's clauses over ``keys`` (:func:`parse_filter`)."""
        return parse_filter(self.filter, keys)

    def order(
        self, known: Sequence[str], default: list[tuple[str, bool]]
    ) -> list[tuple[str, bool]]:
        """``order_by`` as ``(field, descending)`` pairs over ``known`` fields (:func:`sort_key`),
        else ``default``."""
        return sort_key(self.order_by, known) or default

    def page(
        self, items: list[T], order: Sequence[tuple[str, bool]], field: Callable[[T, str], Any]
    ) -> tuple[list[T], str | None]:
        """The page asked for of ``items`` sorted by ``order`` (the first pair the main key) on
        ``field(item, key)``, and the next page's token (None: the last page)."""
        for key, descending in reversed(order):
            items.sort(key=lambda item, k=key: field(item, k), reverse=descending)
        offset = decode_page_token(self.page_token)
        end = offset + self.max_results
        return items[offset:end], encode_page_token(end) if end < len(items) else None
