"""The run filter language: a tokenizer and recursive-descent parser producing a small AST.

Grammar (keywords are case-insensitive)::

    expr       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" expr ")" | comparison
    comparison := field op value
                | field ["not"] "in" "(" value ("," value)* ")"
                | field "is" ["not"] "null"
    field      := prefix "." key | attribute
    prefix     := metrics | params | tags | attributes   (also m, p, t, attr, run)
    key        := name | `quoted name` | "quoted name"
    op         := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">=" | "like" | "ilike"
    value      := number | 'string' | "string"

It is MLflow's search syntax plus ``or``, ``not``, parentheses and ``is [not] null``. Errors
name the column and draw a caret under the offending token. A filter nests at most
``MAX_FILTER_DEPTH`` parentheses and ``not`` deep and holds at most ``MAX_FILTER_CLAUSES``
comparisons and ``in`` values (:mod:`opsloop.kernel.bounds`): deeper or larger is refused with
``InvalidInput`` rather than exhausting the parser's stack or the database's expression limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from opsloop.errors import InvalidInput
from opsloop.kernel.bounds import INT64_MAX
from opsloop.kernel.bounds import INT64_MIN
from opsloop.kernel.bounds import MAX_FILTER_CLAUSES
from opsloop.kernel.bounds import MAX_FILTER_DEPTH

__all__ = ["And", "Comparison", "Not", "Or", "OrderKey", "parse_filter", "parse_order_by"]

Entity = Literal["metric", "param", "tag", "attribute"]
Value = float | int | str

PREFIXES: dict[str, Entity] = {
    "metrics": "metric", "metric": "metric", "m": "metric",
    "params": "param", "param": "param", "p": "param",
    "tags": "tag", "tag": "tag", "t": "tag",
    "attributes": "attribute", "attribute": "attribute", "attr": "attribute", "run": "attribute",
}  # fmt: skip
STRING_ATTRIBUTES = {"run_id", "run_name", "status", "user_id", "parent_run_id", "experiment_id"}
NUMERIC_ATTRIBUTES = {"start_time", "end_time"}
ATTRIBUTE_ALIASES = {"user": "user_id", "name": "run_name", "id": "run_id"}
_COMPARATORS = {"=", "!=", "<>", "<", "<=", ">", ">=", "like", "ilike"}
_KEYWORDS = {"and", "or", "not", "in", "is", "null", "like", "ilike", "asc", "desc"}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<field>[A-Za-z_][A-Za-z0-9_]*\.(?:`[^`]*`|"[^"]*"|[A-Za-z0-9_./:\-]+))
  | (?P<number>[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?))
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Comparison:
    entity: Entity
    key: str
    op: str  # one of _COMPARATORS, "in", "not in", "is null", "is not null"
    value: Value | tuple[Value, ...] | None
    pos: int


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Comparison | And | Or | Not


@dataclass(frozen=True)
class OrderKey:
    entity: Entity
    key: str
    descending: bool


def _error(text: str, pos: int, message: str, width: int = 1) -> InvalidInput:
    caret = " " * pos + "^" * max(width, 1)
    return InvalidInput(
        f"malformed filter at column {pos + 1}: {message}\n  {text}\n  {caret}",
        details={"column": pos + 1, "filter": text},
    )


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _error(text, pos, f"unexpected character {text[pos]!r}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0  # parentheses and ``not`` open around the current token
        self.clauses = 0  # comparisons and ``in`` values so far

    # -- token helpers ----------------------------------------------------------------------
    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def peek_word(self) -> str | None:
        tok = self.peek()
        return tok.text.lower() if tok and tok.kind == "word" else None

    def next(self, expected: str) -> Token:
        tok = self.peek()
        if tok is None:
            raise _error(
                self.text, len(self.text), f"expected {expected}, got the end of the filter"
            )
        self.i += 1
        return tok

    def fail(self, tok: Token, message: str) -> InvalidInput:
        return _error(self.text, tok.pos, message, len(tok.text))

    # -- grammar ------------------------------------------------------------------------------
    def parse(self) -> Node:
        node = self.or_expr()
        tok = self.peek()
        if tok is not None:
            raise self.fail(tok, f"expected 'and', 'or' or the end of the filter, got {tok.text!r}")
        return node

    def or_expr(self) -> Node:
        return self.joined("or", self.and_expr, Or)

    def and_expr(self) -> Node:
        return self.joined("and", self.not_expr, And)

    def joined(
        self, word: str, operand: Callable[[], Node], node: Callable[[tuple[Node, ...]], Node]
    ) -> Node:
        """``operand (word operand)*``: a lone operand as it is, several joined in ``node``."""
        items = [operand()]
        while self.peek_word() == word:
            self.i += 1
            items.append(operand())
        return items[0] if len(items) == 1 else node(tuple(items))

    def not_expr(self) -> Node:
        tok = self.peek()
        if tok is not None and (self.peek_word() == "not" or tok.text == "("):
            self.enter(tok)
            self.i += 1
            if tok.text == "(":
                node = self.or_expr()
                close = self.next("')'")
                if close.text != ")":
                    raise self.fail(close, f"expected ')', got {close.text!r}")
            else:
                node = Not(self.not_expr())
            self.depth -= 1
            return node
        return self.comparison()

    def enter(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_FILTER_DEPTH:
            raise self.fail(
                tok, f"the filter nests deeper than {MAX_FILTER_DEPTH} parentheses and 'not'"
            )

    def count_clause(self, tok: Token) -> None:
        self.clauses += 1
        if self.clauses > MAX_FILTER_CLAUSES:
            raise self.fail(
                tok, f"the filter holds more than {MAX_FILTER_CLAUSES} comparisons and 'in' values"
            )

    def field(self, tok: Token) -> tuple[Entity, str]:
        if tok.kind == "field":
            prefix, key = tok.text.split(".", 1)
            entity = PREFIXES.get(prefix.lower())
            if entity is None:
                raise self.fail(
                    tok, f"unknown prefix {prefix!r}; use metrics., params., tags. or attributes."
                )
            if key[:1] in '`"':
                key = key[1:-1]
            if not key:
                raise self.fail(tok, "empty key name")
        elif tok.kind == "word" and tok.text.lower() not in _KEYWORDS:
            entity, key = "attribute", tok.text
        else:
            raise self.fail(
                tok, f"expected a field such as metrics.acc or params.lr, got {tok.text!r}"
            )
        if entity == "attribute":
            key = ATTRIBUTE_ALIASES.get(key.lower(), key.lower())
            if key not in STRING_ATTRIBUTES | NUMERIC_ATTRIBUTES:
                known = ", ".join(sorted(STRING_ATTRIBUTES | NUMERIC_ATTRIBUTES))
                raise self.fail(
                    tok,
                    f"unknown attribute {key!r}; known: {known} (or use metrics., params., tags.)",
                )
        return entity, key

    def value(self) -> tuple[Value, Token]:
        tok = self.next("a value")
        if tok.kind == "number":
            if "." in tok.text or "e" in tok.text.lower():
                return float(tok.text), tok
            integer = int(tok.text)
            if not INT64_MIN <= integer <= INT64_MAX:
                raise self.fail(tok, f"{tok.text} is out of range: integers fit in 64 bits")
            return integer, tok
        if tok.kind == "string":
            body = tok.text[1:-1]
            return re.sub(r"\\(.)", r"\1", body), tok
        raise self.fail(tok, f"expected a number or a quoted string, got {tok.text!r}")

    def comparison(self) -> Comparison:
        field_tok = self.next("a field such as metrics.acc")
        self.count_clause(field_tok)
        entity, key = self.field(field_tok)
        op_tok = self.next("an operator (=, !=, <, <=, >, >=, like, ilike, in, is)")
        op = op_tok.text.lower()
        if op == "not":
            in_tok = self.next("'in'")
            if in_tok.text.lower() != "in":
                raise self.fail(in_tok, f"expected 'in' after 'not', got {in_tok.text!r}")
            op = "not in"
        if op in ("in", "not in"):
            return self.in_list(entity, key, op, field_tok)
        if op == "is":
            negated = self.peek_word() == "not"
            self.i += negated
            null_tok = self.next("'null'")
            if null_tok.text.lower() != "null":
                raise self.fail(null_tok, f"expected 'null', got {null_tok.text!r}")
            return Comparison(
                entity, key, "is not null" if negated else "is null", None, field_tok.pos
            )
        if op not in _COMPARATORS:
            raise self.fail(
                op_tok,
                "expected an operator (=, !=, <, <=, >, >=, like, ilike, in, is), "
                f"got {op_tok.text!r}",
            )
        if op == "<>":
            op = "!="
        value, value_tok = self.value()
        self.check_types(entity, key, op, value, value_tok)
        return Comparison(entity, key, op, value, field_tok.pos)

    def in_list(self, entity: Entity, key: str, op: str, field_tok: Token) -> Comparison:
        open_tok = self.next("'('")
        if open_tok.text != "(":
            raise self.fail(open_tok, f"expected '(' after {op!r}, got {open_tok.text!r}")
        values: list[Value] = []
        while True:
            value, value_tok = self.value()
            if values:  # the comparison counted the first
                self.count_clause(value_tok)
            self.check_types(entity, key, "=", value, value_tok)
            values.append(value)
            sep = self.next("',' or ')'")
            if sep.text == ")":
                break
            if sep.text != ",":
                raise self.fail(sep, f"expected ',' or ')', got {sep.text!r}")
        return Comparison(entity, key, op, tuple(values), field_tok.pos)

    def check_types(self, entity: Entity, key: str, op: str, value: Value, tok: Token) -> None:
        numeric = entity == "metric" or (entity == "attribute" and key in NUMERIC_ATTRIBUTES)
        if numeric and isinstance(value, str):
            raise self.fail(
                tok, f"{entity} {key!r} is numeric: compare it with a number, not {tok.text}"
            )
        if not numeric and not isinstance(value, str):
            raise self.fail(tok, f"{entity} {key!r} is a string: quote the value ('{tok.text}')")
        if numeric and op in ("like", "ilike"):
            raise self.fail(tok, f"'{op}' compares strings; {entity} {key!r} is numeric")


def parse_filter(text: str | None) -> Node | None:
    """Parse a filter string into an AST (None for an empty filter). Raises ``InvalidInput``."""
    if text is None or not text.strip():
        return None
    return _Parser(text).parse()


def parse_order_by(clauses: list[str] | None) -> list[OrderKey]:
    """Parse ``["metrics.acc DESC", "start_time"]``. Raises ``InvalidInput``."""
    keys: list[OrderKey] = []
    for clause in clauses or []:
        parser = _Parser(clause)
        field_tok = parser.next("a field to order by")
        entity, key = parser.field(field_tok)
        direction = parser.peek_word()
        descending = False
        if direction in ("asc", "desc"):
            parser.i += 1
            descending = direction == "desc"
        tok = parser.peek()
        if tok is not None:
            raise parser.fail(
                tok, f"expected ASC, DESC or the end of the order_by clause, got {tok.text!r}"
            )
        keys.append(OrderKey(entity, key, descending))
    return keys
