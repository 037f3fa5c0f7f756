"""Pages of a listing, and their opaque tokens: an offset, base64-encoded so clients treat it as
a cursor. Every domain's listings return a ``Page``."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any
from typing import Generic
from typing import TypeVar

from pydantic import BaseModel

from opsloop.errors import InvalidInput

__all__ = ["Page", "decode_page_token", "encode_page_token", "page_query", "split_page"]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a listing; pass ``next_page_token`` back to get the next one."""

    items: list[T]
    next_page_token: str | None = None


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    """The offset a token stands for (0 for None). Raises ``InvalidInput`` for a forged token."""
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(f"invalid page_token {token!r}: pass back a next_page_token") from None
    if not isinstance(offset, int) or offset < 0:
        raise InvalidInput(f"invalid page_token {token!r}: pass back a next_page_token")
    return offset


def split_page(rows: Sequence[T], offset: int, max_results: int) -> tuple[list[T], str | None]:
    """This page's rows and the next page's token, from rows read at ``offset`` with a limit of
    ``max_results + 1``: the extra row, dropped here, is how a listing knows more follow."""
    token = encode_page_token(offset + max_results) if len(rows) > max_results else None
    return list(rows[:max_results]), token


def page_query(max_results: int, page_token: str | None) -> dict[str, Any]:
    """The query parameters asking a listing route for one page (no token: the first)."""
    params: dict[str, Any] = {"max_results": max_results}
    if page_token:
        params["page_token"] = page_token
    return params
