"""What both limiters (in-process and Redis) decide the same way: budget periods, money as
whole nano-dollars, which limit a refused call hit and when to retry, the response headers, and
what a call gets when the limit store is down.

**Rates are token buckets.** A key with ``rpm: 60`` has a bucket of 60 requests that refills
continuously at 60 a minute (one a second): a burst of 60, then one a second, and never more
than 60 plus what refilled in any window. Tokens per minute work the same with the call's
estimated tokens; settling a call puts back what it did not use (or takes what it used beyond
the estimate, so a bucket may go below zero and the next calls wait longer).

**Budgets are counters per UTC calendar day or month.** Reserving adds the call's estimated
cost, settling replaces it with the actual cost; a call is refused when the counter plus its
estimate would pass the budget. Money is counted in whole nano-dollars (a float sum of cents
drifts: ten reservations of $0.10 would not exactly fill a $1 budget), exact up to the
$1,000,000 a budget may be. No overshoot holds as long as a call's actual cost is at most its
estimate, which is why the gateway estimates with the request's ``max_tokens``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Literal

from opsloop.errors import RateLimited
from opsloop.errors import StoreError
from opsloop.llm.gateway.ports import Caller
from opsloop.llm.gateway.ports import KeyLimits
from opsloop.llm.gateway.ports import Reservation

__all__ = [
    "NANO",
    "OnStoreDown",
    "Period",
    "fits_at_all",
    "is_limited",
    "limit_headers",
    "period_of",
    "refused",
    "store_down",
    "to_nano",
]

NANO = 1_000_000_000  # nano-dollars per dollar
OnStoreDown = Literal["open", "closed"]
_NAMES = {"rpm": "requests per minute", "tpm": "tokens per minute", "budget": "budget"}


@dataclass(frozen=True)
class Period:
    """One budget period: ``id`` names it in counters (``d20261208``, ``m202612``)."""

    id: str
    start_s: float
    end_s: float


_LAST_PERIOD: dict[str, Period] = {}  # per kind, the period of the latest call


def period_of(kind: str, now_s: float) -> Period:
    """The UTC calendar day or month holding ``now_s`` (seconds since the epoch); the last one
    found is kept, so a call costs a comparison, not a calendar computation."""
    last = _LAST_PERIOD.get(kind)
    if last is not None and last.start_s <= now_s < last.end_s:
        return last
    found = _period(kind, now_s)
    _LAST_PERIOD[kind] = found
    return found


def _period(kind: str, now_s: float) -> Period:
    now = datetime.fromtimestamp(now_s, UTC)
    if kind == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        end = datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=UTC)
        return Period(f"d{start:%Y%m%d}", start.timestamp(), end.timestamp())
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
    return Period(f"m{start:%Y%m}", start.timestamp(), end.timestamp())


def to_nano(usd: float) -> int:
    """``usd`` as whole nano-dollars (a negative or missing cost counts as nothing)."""
    return max(0, round(usd * NANO)) if math.isfinite(usd) else 0


def is_limited(caller: Caller) -> bool:
    """Whether any limit applies to ``caller`` (a call without a key, or a key without limits,
    costs the limiters nothing)."""
    limits = caller.limits
    return bool(caller.key_id) and (
        limits.rpm is not None or limits.tpm is not None or limits.budget_usd is not None
    )


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def refused(limits: KeyLimits, which: str, wait_s: float, now_s: float) -> RateLimited:
    """The 429 for a call over ``which`` (``rpm``, ``tpm`` or ``budget``), to retry in
    ``wait_s`` seconds."""
    wait_s = math.ceil(max(wait_s, 0.0) * 1000) / 1000
    reset_at = _iso(now_s + wait_s)
    if which == "budget":
        message = (f"this API key's budget of ${limits.budget_usd:g} per {limits.budget_period} "
                   f"is spent: it resets at {reset_at}")  # fmt: skip
    else:
        value = limits.rpm if which == "rpm" else limits.tpm
        message = f"this API key is over its {value} {_NAMES[which]}: retry in {wait_s:g} s"
    details = {"limit": which, "retry_after_s": wait_s, "reset_at": reset_at}
    return RateLimited(message, details=details)


def fits_at_all(limits: KeyLimits, tokens: int, cost_nano: int, now_s: float) -> None:
    """``RateLimited`` for a call that no wait would let through: more tokens than the key
    may use in a minute, or a cost above its whole budget."""
    if limits.tpm is not None and tokens > limits.tpm:
        raise RateLimited(
            f"this call's estimated {tokens} tokens exceed this API key's {limits.tpm} tokens "
            "per minute: send a shorter request (or a lower max_tokens), or raise the limit",
            details={"limit": "tpm", "retry_after_s": 60.0, "reset_at": _iso(now_s + 60)},
        )
    if limits.budget_usd is not None and cost_nano > to_nano(limits.budget_usd):
        end = period_of(limits.budget_period, now_s).end_s
        raise RateLimited(
            f"this call's estimated cost ${cost_nano / NANO:g} exceeds this API key's whole "
            f"budget of ${limits.budget_usd:g} per {limits.budget_period}",
            details={"limit": "budget", "retry_after_s": math.ceil(end - now_s),
                     "reset_at": _iso(end)},
        )  # fmt: skip


def limit_headers(
    limits: KeyLimits, requests_left: float, tokens_left: float, budget_left_nano: int
) -> dict[str, str]:
    """The ``x-ratelimit-*`` headers OpenAI clients read, and the budget left, for the limits
    the key has."""
    headers = {}
    if limits.rpm is not None:
        headers["x-ratelimit-limit-requests"] = str(limits.rpm)
        headers["x-ratelimit-remaining-requests"] = str(max(0, math.floor(requests_left)))
    if limits.tpm is not None:
        headers["x-ratelimit-limit-tokens"] = str(limits.tpm)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, math.floor(tokens_left)))
    if limits.budget_usd is not None:
        headers["x-opsloop-budget-remaining-usd"] = f"{max(0, budget_left_nano) / NANO:.6f}"
    return headers


def store_down(
    policy: OnStoreDown, caller: Caller, tokens: int, cost_usd: float, why: str
) -> Reservation:
    """What a call gets when the limit store cannot be asked: a reservation that settles to
    nothing, marked ``x-opsloop-limits: fail-open`` (``open``), or a 503 saying so
    (``closed``)."""
    if policy == "open":
        headers = {"x-opsloop-limits": "fail-open"}
        return Reservation(caller.key_id, tokens, cost_usd, headers=headers)
    raise StoreError(
        f"the gateway's limit store is down ({why}) and limits fail closed "
        "(limits.on_store_down: closed): the call was not sent; retry shortly",
        details={"limits": "fail-closed", "retry_after_s": 1.0},
    )
