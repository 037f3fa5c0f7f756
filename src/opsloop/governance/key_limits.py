"""What an API key may use through the LLM gateway: the shapes of its limits, the same from SDK,
REST and CLI.

Limits live on the key's own row (``api_keys.rpm``, ``tpm``, ``budget_usd``, ``budget_period``),
so they are created, listed, audited and revoked with it, and a change is one admin write. The
gateway enforces them (``opsloop.llm.gateway.limits``); governance only stores them, which is
why the budget's period is a plain ``day`` or ``month`` here and its meaning (UTC calendar
periods) is the gateway's.

A change names only what it changes: ``None`` leaves a limit as it is, and ``clear`` first
removes every limit, so ``--clear --rpm 60`` leaves the key with a request limit alone.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from opsloop.governance.entities import ApiKey

__all__ = ["MAX_BUDGET_USD", "KeyLimitsChange", "KeyLimitsOut", "LimitedApiKey"]

MAX_BUDGET_USD = 1_000_000.0  # spend is counted in nano-dollars: exact up to 2**53 of them


class KeyLimitsChange(BaseModel):
    """The body of ``PATCH /api/keys/{key_id}/limits``: the limits to set (None: unchanged)."""

    model_config = ConfigDict(extra="forbid")

    rpm: int | None = Field(None, ge=1, le=10_000_000, description="requests per minute")
    tpm: int | None = Field(
        None, ge=1, le=10**12, description="tokens (prompt + completion) per minute"
    )
    budget_usd: float | None = Field(
        None, gt=0, le=MAX_BUDGET_USD, allow_inf_nan=False, description="spend per period, USD"
    )
    budget_period: Literal["day", "month"] | None = Field(
        None, description="the budget's period, a UTC calendar day or month (default month)"
    )
    clear: bool = Field(False, description="remove every limit first, then set those given")

    def is_empty(self) -> bool:
        """Whether the change changes nothing (no limit given, no clear)."""
        given = (self.rpm, self.tpm, self.budget_usd, self.budget_period)
        return not self.clear and all(value is None for value in given)


class KeyLimitsOut(BaseModel):
    """A key's limits as stored; None is unlimited (``budget_period`` is set with a budget)."""

    model_config = ConfigDict(frozen=True)

    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None
    budget_period: Literal["day", "month"] | None = None

    def summary(self) -> str:
        """One cell for a listing: ``60 rpm, 20000 tpm, $5/day``, or ``-`` for none."""
        parts = []
        if self.rpm is not None:
            parts.append(f"{self.rpm} rpm")
        if self.tpm is not None:
            parts.append(f"{self.tpm} tpm")
        if self.budget_usd is not None:
            parts.append(f"${self.budget_usd:g}/{self.budget_period or 'month'}")
        return ", ".join(parts) or "-"


class LimitedApiKey(ApiKey):
    """A key as listings show it, with its gateway limits."""

    limits: KeyLimitsOut = Field(default_factory=KeyLimitsOut)
