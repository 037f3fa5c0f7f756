"""Per-key limits and budgets for the gateway: which limiter its ``limits:`` section asks for.

::

    limits:
      redis_url: redis://127.0.0.1:6379/0   # shared by every gateway process; omit: in-process
      on_store_down: closed                 # or open: calls go through, marked fail-open
      key_prefix: "opsloop:limits:"         # Redis keys start with it
      timeout_s: 0.25                       # each call to Redis

Without ``redis_url`` the limits are kept in the gateway's process (:mod:`.limits_memory`):
exact, and right for one process; with it, in Redis (:mod:`.limits_redis`), one Lua script per
decision, so any number of gateway processes share the limits. The limits themselves (requests
and tokens per minute, a spend budget per UTC day or month) are each key's, stored with the key
(``opsloop keys limit``) and read by :class:`.limits_store.KeyLimitsLookup`; the rules both
limiters apply are :mod:`.limit_rules`'.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError
from pydantic import field_validator

from opsloop.errors import InvalidInput
from opsloop.errors import validation_problems
from opsloop.llm.gateway.limits_memory import MemoryLimiter
from opsloop.llm.gateway.limits_memory import SpentSince
from opsloop.llm.gateway.ports import Limiter

__all__ = ["LimitsSettings", "build_limiter"]

_SCHEMES = ("redis", "rediss", "unix")


class LimitsSettings(BaseModel):
    """The gateway configuration's ``limits:`` section (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    redis_url: str | None = None
    on_store_down: Literal["open", "closed"] = "closed"
    key_prefix: str = Field("opsloop:limits:", min_length=1, max_length=200)
    timeout_s: float = Field(0.25, gt=0, le=30)

    @field_validator("redis_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and value.partition("://")[0] not in _SCHEMES:
            raise ValueError(f"must be a redis://, rediss:// or unix:// URL, got {value[:200]!r}")
        return value


def build_limiter(
    raw_config: Mapping[str, Any] | BaseModel | None,
    *,
    spent_since: SpentSince | None = None,
    clock: Callable[[], float] = time.time,
) -> Limiter:
    """The limiter the gateway config's ``limits:`` section asks for.

    Args:
        raw_config: The section as read from the file (or the gateway's parsed model of it);
            None or empty: in-process.
        spent_since: What a key already spent since a time (epoch ms), so budgets survive a
            restart (:func:`.limits_store.store_spend`).
        clock: Seconds since the epoch.

    Raises:
        InvalidInput: A value the section does not take, naming its path (``limits.…``).
    """
    if isinstance(raw_config, BaseModel):
        raw_config = raw_config.model_dump(exclude_none=True)
    if raw_config is not None and not isinstance(raw_config, Mapping):
        raise InvalidInput(f"limits: must be a mapping, got {type(raw_config).__name__}")
    try:
        settings = LimitsSettings.model_validate(dict(raw_config or {}))
    except ValidationError as exc:
        raise InvalidInput("; ".join(f"limits.{p}" for p in validation_problems(exc))) from None
    if settings.redis_url is None:
        return MemoryLimiter(clock=clock, spent_since=spent_since,
                             on_store_down=settings.on_store_down)  # fmt: skip
    from opsloop.llm.gateway.limits_redis import RedisLimiter  # the redis extra, when asked for

    return RedisLimiter(
        settings.redis_url, key_prefix=settings.key_prefix,
        on_store_down=settings.on_store_down, timeout_s=settings.timeout_s, clock=clock,
        spent_since=spent_since,
    )  # fmt: skip
