"""Choosing the version that answers a request, from the deployment's traffic policy.

Canary traffic is split at random per request. A/B traffic is split by a stable hash of the
sticky key (a header or a cookie) and the deployment's name, so a user keeps seeing the same
variant for as long as the weight stays put, and raising the weight only moves users from
stable to candidate, never back. A request without the key is assigned at random.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping

from opsloop.serving.entities import TrafficPolicy

__all__ = ["Route", "choose"]

_RNG = random.Random()


class Route(tuple):  # (version, shadow version or None), cheap to build per request
    __slots__ = ()

    @property
    def version(self) -> int:
        return int(self[0])

    @property
    def shadow(self) -> int | None:
        return self[1]


def _bucket(name: str, key: str) -> float:
    digest = hashlib.blake2b(f"{name}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100


def choose(
    policy: TrafficPolicy, name: str, headers: Mapping[str, str], cookies: Mapping[str, str]
) -> Route:
    if policy.mode == "single" or policy.candidate is None:
        return Route((policy.stable, None))
    if policy.mode == "shadow":
        return Route((policy.stable, policy.candidate))
    point = _RNG.random() * 100
    if policy.mode == "ab" and policy.sticky is not None:
        sticky = policy.sticky
        key = (
            headers.get(sticky.header.lower())
            if sticky.header
            else cookies.get(sticky.cookie or "")
        )
        if key:
            point = _bucket(name, key)
    return Route((policy.candidate if point < policy.weight else policy.stable, None))
