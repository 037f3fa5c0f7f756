"""The Redis limiter: limits shared by every gateway process, each decision one Lua script.

Redis runs a script without interleaving any other command, so reserving (refill the buckets,
check every limit, count the call) is atomic across processes and machines: one round trip per
reserve and one per settle, and no overshoot however many gateways ask at once. The rules are
:mod:`.limit_rules`'; the time comes from the gateway's clock (an argument), so a test can move
it across a day or a month.

Keys (``key_prefix`` is configurable; ``{KEY_ID}`` is a hash tag, so one key's counters share a
Redis Cluster slot)::

    PREFIX{KEY_ID}:rate            hash: r, r@ (requests bucket and when), t, t@ (tokens)
    PREFIX{KEY_ID}:spent:PERIOD    nano-dollars spent and reserved in d20261208 / m202612
    PREFIX{KEY_ID}:open:UUID       a reservation not yet settled (settle deletes it: once only)

A budget counter that does not exist yet (a new period, a Redis that lost its data, a budget
set mid-month) is seeded from ``spent_since`` when the limiter has one, before the first call
is counted. When Redis cannot be reached, a call gets ``on_store_down`` (:func:`store_down`),
and Redis is not asked again for :data:`DOWN_BACKOFF_S`, so a hung server costs one timeout,
not one per request.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from opsloop.errors import OpsloopError
from opsloop.llm.gateway.limit_rules import OnStoreDown
from opsloop.llm.gateway.limit_rules import fits_at_all
from opsloop.llm.gateway.limit_rules import is_limited
from opsloop.llm.gateway.limit_rules import limit_headers
from opsloop.llm.gateway.limit_rules import period_of
from opsloop.llm.gateway.limit_rules import refused
from opsloop.llm.gateway.limit_rules import store_down
from opsloop.llm.gateway.limit_rules import to_nano
from opsloop.llm.gateway.limits_memory import SpentSince
from opsloop.llm.gateway.ports import Caller
from opsloop.llm.gateway.ports import Reservation

__all__ = ["DOWN_BACKOFF_S", "RedisLimiter"]

DOWN_BACKOFF_S = 1.0
_OPEN_TTL_MS = 3_600_000  # a reservation never settled stops being settleable after an hour
_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
log = logging.getLogger(__name__)

_LEVEL = """
local function level(name, cap, now)
  local got = redis.call('HMGET', KEYS[1], name, name .. '@')
  local l, at = tonumber(got[1]), tonumber(got[2])
  if l == nil then return cap end
  if now > at then l = l + (now - at) * cap / 60000 end
  if l > cap then l = cap end
  return l
end
local function keep(cap, l)
  local need = math.ceil((cap - l) * 60000 / cap) + 1000
  redis.call('PEXPIRE', KEYS[1], need, 'GT')
  if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], need) end
end
"""

# KEYS: rate, spent, open. ARGV: now ms, rpm, tpm, tokens, budget nano (-1: none), cost nano,
# period end ms, seed (1: a missing counter must be seeded first), spent ttl s, open ttl ms.
# -> {-1} seed first | {0, limit, wait ms} refused | {1, requests left, tokens left, budget left}
_RESERVE = (
    _LEVEL
    + """
local now, rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens, budget, cost = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local wait, which = -1, ''
local req, tok, spent = 0, 0, 0
if budget >= 0 then
  local got = redis.call('GET', KEYS[2])
  if got then spent = tonumber(got) elseif ARGV[8] == '1' then return {-1} end
  if spent >= budget or spent + cost > budget then
    wait, which = tonumber(ARGV[7]) - now, 'budget'
  end
end
if rpm > 0 then
  req = level('r', rpm, now)
  local ms = (1 - req) * 60000 / rpm
  if req < 1 and ms > wait then wait, which = ms, 'rpm' end
end
if tpm > 0 then
  tok = level('t', tpm, now)
  local ms = (tokens - tok) * 60000 / tpm
  if tok < tokens and ms > wait then wait, which = ms, 'tpm' end
end
if which ~= '' then return {0, which, math.ceil(wait)} end
if rpm > 0 then
  req = req - 1
  redis.call('HSET', KEYS[1], 'r', req, 'r@', now)
  keep(rpm, req)
end
if tpm > 0 then
  tok = tok - tokens
  redis.call('HSET', KEYS[1], 't', tok, 't@', now)
  keep(tpm, tok)
end
if budget >= 0 then
  redis.call('INCRBY', KEYS[2], ARGV[6])
  redis.call('EXPIRE', KEYS[2], ARGV[9], 'NX')
end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[10])
return {1, math.floor(req), math.floor(tok), budget - spent - cost}
"""
)

# KEYS: rate, spent, open. ARGV: now ms, tpm (0: none), tokens to give back (negative: to
# take), nano-dollars to add (negative: to give back). -> 1 settled | 0 unknown or settled before
_SETTLE = (
    _LEVEL
    + """
if redis.call('DEL', KEYS[3]) == 0 then return 0 end
local now, tpm, back = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if tpm > 0 and back ~= 0 then
  local tok = level('t', tpm, now) + back
  if tok > tpm then tok = tpm end
  redis.call('HSET', KEYS[1], 't', tok, 't@', now)
  keep(tpm, tok)
end
if ARGV[4] ~= '0' and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('INCRBY', KEYS[2], ARGV[4])
end
return 1
"""
)


def _where(url: str) -> str:
    """Where Redis is, for messages: host and port, never a password."""
    parts = urlsplit(url)
    return f"Redis at {parts.hostname or parts.path}:{parts.port or 6379}"


class RedisLimiter:
    """Requests, tokens and spend per key on Redis (see the module docstring).

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL.
        key_prefix: Put before every key (tests use a unique one each).
        on_store_down: ``closed`` (503) or ``open`` (through, marked ``fail-open``).
        timeout_s: Connect and read timeout of each call to Redis.
        clock: Seconds since the epoch.
        spent_since: What a key spent since a time (epoch ms), to seed a missing counter.
    """

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "opsloop:limits:",
        on_store_down: OnStoreDown = "closed",
        timeout_s: float = 0.25,
        clock: Callable[[], float] = time.time,
        spent_since: SpentSince | None = None,
    ) -> None:
        self._redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1),  # once more on a pooled connection the server closed
        )  # fmt: skip
        self._reserve = self._redis.register_script(_RESERVE)
        self._settle = self._redis.register_script(_SETTLE)
        self._prefix = key_prefix
        self._on_store_down = on_store_down
        self._clock = clock
        self._spent_since = spent_since
        self._where = _where(url)
        self._down_until = 0.0

    async def reserve(self, caller: Caller, *, tokens: int, cost_usd: float) -> Reservation:
        """Count one request, ``tokens`` and ``cost_usd`` against ``caller``'s key in one
        script, or raise ``RateLimited`` (nothing counted) when a limit would be passed."""
        if not is_limited(caller):
            return Reservation(caller.key_id, tokens, cost_usd)
        if time.monotonic() < self._down_until:
            return store_down(self._on_store_down, caller, tokens, cost_usd, self._where)
        limits, tokens, nano = caller.limits, max(0, tokens), to_nano(cost_usd)
        now = self._clock()
        fits_at_all(limits, tokens, nano, now)
        period = period_of(limits.budget_period, now)
        budget = to_nano(limits.budget_usd) if limits.budget_usd is not None else -1
        opened = uuid.uuid4().hex
        keys = self._keys(caller.key_id, period.id, opened)
        args: list[Any] = [
            int(now * 1000), limits.rpm or 0, limits.tpm or 0, tokens, budget, nano,
            int(period.end_s * 1000), int(self._spent_since is not None),
            int(period.end_s - now) + 86_400, _OPEN_TTL_MS,
        ]  # fmt: skip
        try:
            result = await self._reserve(keys=keys, args=args)
            if result[0] == -1:
                await self._seed(keys[1], caller.key_id, period.start_s, args[8])
                args[7] = 0
                result = await self._reserve(keys=keys, args=args)
        except _DOWN as exc:
            self._down_until = time.monotonic() + DOWN_BACKOFF_S
            log.warning("limits: %s is down (%s)", self._where, exc)
            return store_down(self._on_store_down, caller, tokens, cost_usd, self._where)
        except OpsloopError as exc:  # the seed's store failed
            return store_down(self._on_store_down, caller, tokens, cost_usd, exc.message)
        if result[0] == 0:
            raise refused(limits, result[1].decode(), result[2] / 1000, now)
        headers = limit_headers(limits, result[1], result[2], int(result[3]))
        token = f"{opened}|{period.id}|{limits.tpm or 0}"
        return Reservation(caller.key_id, tokens, cost_usd, token=token, headers=headers)

    async def settle(self, reservation: Reservation, *, tokens: int, cost_usd: float) -> None:
        """Replace the reservation's estimate with what the call used, once. When Redis is down
        the estimate stays counted (the safe side) and nothing is raised: the call is over."""
        if not reservation.token:
            return
        opened, period_id, tpm = reservation.token.split("|")
        keys = self._keys(reservation.key_id, period_id, opened)
        back = reservation.tokens - max(0, tokens)
        more = to_nano(cost_usd) - to_nano(reservation.cost_usd)
        try:
            await self._settle(keys=keys, args=[int(self._clock() * 1000), tpm, back, more])
        except _DOWN as exc:
            log.warning("limits: could not settle on %s (%s); the estimate stays", self._where,
                        exc)  # fmt: skip

    async def close(self) -> None:
        """Close the connections to Redis."""
        await self._redis.aclose()

    def _keys(self, key_id: str, period_id: str, opened: str) -> list[str]:
        base = f"{self._prefix}{{{key_id}}}"
        return [f"{base}:rate", f"{base}:spent:{period_id}", f"{base}:open:{opened}"]

    async def _seed(self, counter: str, key_id: str, start_s: float, ttl_s: int) -> None:
        """Start a missing budget counter at what the key already spent this period (only the
        first of several processes that try sets it)."""
        assert self._spent_since is not None
        spent = await self._spent_since(key_id, int(start_s * 1000))
        await self._redis.set(counter, to_nano(spent), ex=ttl_s, nx=True)
