"""Model prices, and the cost of a span computed from them at ingest.

A price applies to every model whose name fully matches its ``pattern`` (a case-insensitive
regular expression), tried against the name as sent and without a ``provider/`` prefix. Prices
a user sets (``opsloop traces prices set``) win over the defaults below, the most specific
(longest) pattern first. A span that already carries a cost keeps it.

The defaults are list prices in US dollars per million tokens as published by the providers in
2025; they go stale, which is what the overrides are for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from opsloop.errors import InvalidInput
from opsloop.llm.tracing.records import SpanRecord

__all__ = ["DEFAULT_PRICES", "ModelPrice", "PriceTable", "check_pattern"]

_DATED = r"(-\d{4}-?\d{2}-?\d{2}|-latest)?"


@dataclass(frozen=True)
class ModelPrice:
    pattern: str
    input_per_mtok: float
    output_per_mtok: float
    per_request: float = 0.0
    source: str = "default"  # default or user


def _p(pattern: str, inp: float, out: float) -> ModelPrice:
    return ModelPrice(pattern + _DATED, inp, out)


DEFAULT_PRICES: tuple[ModelPrice, ...] = (
    _p(r"gpt-4o", 2.50, 10.00),
    _p(r"gpt-4o-mini", 0.15, 0.60),
    _p(r"gpt-4\.1", 2.00, 8.00),
    _p(r"gpt-4\.1-mini", 0.40, 1.60),
    _p(r"gpt-4\.1-nano", 0.10, 0.40),
    _p(r"gpt-4-turbo", 10.00, 30.00),
    _p(r"gpt-4", 30.00, 60.00),
    _p(r"gpt-3\.5-turbo(-\d{4})?", 0.50, 1.50),
    _p(r"o1", 15.00, 60.00),
    _p(r"o3", 2.00, 8.00),
    _p(r"o3-mini", 1.10, 4.40),
    _p(r"o4-mini", 1.10, 4.40),
    _p(r"text-embedding-3-small", 0.02, 0.0),
    _p(r"text-embedding-3-large", 0.13, 0.0),
    _p(r"text-embedding-ada-002", 0.10, 0.0),
    _p(r"claude-3-5-sonnet(-\d{8})?", 3.00, 15.00),
    _p(r"claude-3-7-sonnet(-\d{8})?", 3.00, 15.00),
    _p(r"claude-sonnet-4(-\d)?(-\d{8})?", 3.00, 15.00),
    _p(r"claude-3-5-haiku(-\d{8})?", 0.80, 4.00),
    _p(r"claude-3-haiku(-\d{8})?", 0.25, 1.25),
    _p(r"claude-3-opus(-\d{8})?", 15.00, 75.00),
    _p(r"claude-opus-4(-\d)?(-\d{8})?", 15.00, 75.00),
    _p(r"gemini-1\.5-flash(-\d{3})?", 0.075, 0.30),
    _p(r"gemini-1\.5-pro(-\d{3})?", 1.25, 5.00),
    _p(r"gemini-2\.0-flash(-\d{3})?", 0.10, 0.40),
    _p(r"mistral-large", 2.00, 6.00),
    _p(r"mistral-small", 0.10, 0.30),
)


def check_pattern(pattern: str) -> str:
    """``pattern`` if it is a usable regular expression, else ``InvalidInput``."""
    if not pattern or len(pattern) > 250:
        raise InvalidInput("a price pattern must be 1 to 250 characters")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise InvalidInput(
            f"price pattern {pattern!r} is not a regular expression: {exc}"
        ) from None
    return pattern


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


class PriceTable:
    """User prices (most specific first) ahead of the defaults, with a per-model memo."""

    def __init__(self, user_prices: list[ModelPrice]) -> None:
        ordered = sorted(user_prices, key=lambda p: -len(p.pattern))
        self.prices = [*ordered, *DEFAULT_PRICES]
        self._memo: dict[str, ModelPrice | None] = {}

    def find(self, model: str) -> ModelPrice | None:
        if model in self._memo:
            return self._memo[model]
        bare = model.rsplit("/", 1)[-1]
        found = next(
            (
                price
                for price in self.prices
                if _compiled(price.pattern).fullmatch(model)
                or _compiled(price.pattern).fullmatch(bare)
            ),
            None,
        )
        self._memo[model] = found
        return found

    def apply(self, record: SpanRecord) -> None:
        """Fill ``record.cost`` from its model and token counts, unless it came with a cost."""
        if record.cost is not None or not record.model:
            return
        price = self.find(record.model)
        if price is None:
            return
        if record.input_tokens is None and record.output_tokens is None and not price.per_request:
            return
        record.cost = (
            (record.input_tokens or 0) * price.input_per_mtok / 1e6
            + (record.output_tokens or 0) * price.output_per_mtok / 1e6
            + price.per_request
        )
