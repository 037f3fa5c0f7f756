"""``users`` mode's half of the server's auth check: keys to principals, principals to roles.

The server's one auth dependency (``opsloop.web.deps.require_token``) reads the credential
(a bearer key, or the session cookie a key signed in with), throttles wrong guesses, checks
CSRF for the pages, and hands the rest to the :class:`UserAuthorizer` the app gave it: who the
key is, and whether that principal's role is enough for the route (:mod:`.policy`).

Resolved keys are kept for :data:`CACHE_TTL_S` seconds, so a request costs a dict look-up, not a
query. Any change made through this server (a revoked key, a changed role) empties the cache at
once (:meth:`UserAuthorizer.forget`); a change made from another process (``opsloop keys
revoke`` on the database directly, another worker) is seen within :data:`CACHE_TTL_S`. A key's
expiry is checked on every request, cached or not. A key in use is looked up again in the
background before its resolution expires (:meth:`UserAuthorizer.claim_refresh`), so no request
of a steady client waits for the query.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fastapi import Request

from opsloop.governance import services
from opsloop.governance.policy import RouteRoles
from opsloop.governance.roles import MAINTAINER
from opsloop.governance.roles import rank
from opsloop.governance.roles import require_role
from opsloop.kernel.identity import Principal
from opsloop.kernel.timeutil import now_ms
from opsloop.store.database import Store

__all__ = ["CACHE_TTL_S", "SESSION_SECRET", "UserAuthorizer"]

CACHE_TTL_S = 2.0
SESSION_SECRET = "opsloop-users-mode"  # sessions' HMAC key in users mode (see web.sessions)
_MAX_CACHED = 10_000


class UserAuthorizer:
    """Resolves API keys and session subjects to principals, and checks route roles.

    Thread-safe. ``store`` is the server's metadata store.
    """

    session_secret = SESSION_SECRET

    def __init__(
        self, store: Store, *, ttl_s: float = CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.store = store
        self.ttl_s = ttl_s
        self._clock = clock
        self.routes = RouteRoles()
        self._cache: dict[str, tuple[float, str, Principal | None]] = {}
        self._refreshing: set[str] = set()  # slots being looked up again in the background
        self._lock = threading.Lock()

    # -- who --------------------------------------------------------------------------------
    def cached(self, key: str) -> tuple[str, Principal] | None:
        """The key id and principal of ``key`` if resolved less than ``ttl_s`` ago and not
        expired since; None when not cached (ask :meth:`principal_for_key`)."""
        found = self._cache.get(_digest("k", key))
        if found is None or found[0] < self._clock() or found[2] is None:
            return None
        principal = found[2]
        if principal.expires_at is not None and principal.expires_at <= now_ms():
            return None
        return found[1], principal

    def claim_refresh(self, key: str) -> bool:
        """True, once per resolution, when the cached one of ``key`` is in the last quarter of
        its life: the caller then looks the key up again in the background
        (:meth:`principal_for_key`) while the cached resolution still answers. Without it, the
        first request past the expiry waited for the query, and every request behind it
        started one of its own: a 10-16 ms stall every 2 s at 500 req/s, most of the
        gateway's p99."""
        slot = _digest("k", key)
        with self._lock:
            found = self._cache.get(slot)
            if found is None or slot in self._refreshing:
                return False
            if found[0] - self._clock() > self.ttl_s / 4:
                return False
            self._refreshing.add(slot)
            return True

    def principal_for_key(self, key: str) -> tuple[str, Principal] | None:
        """The key id and principal ``key`` authenticates (a query), or None when it is
        unknown, expired or revoked (its cached resolution, if any, dropped). Blocking: call
        it from a thread."""
        slot = _digest("k", key)
        try:
            with self.store.read() as session:
                found = services.principal_for_key(session, key)
        finally:
            with self._lock:
                self._refreshing.discard(slot)
        if found is None:
            with self._lock:
                self._cache.pop(slot, None)
            return None
        found = found[0], replace(found[1], key_id=found[0])  # the gateway's limits use it
        self._remember(slot, found[0], found[1])
        return found

    def principal_for_session(self, subject: str) -> Principal | None:
        """The principal of a web session whose subject is ``subject`` (the id of the key that
        signed in), or None once that key is revoked or expired. Blocking."""
        slot = _digest("s", subject)
        found = self._cache.get(slot)
        if found is not None and found[0] >= self._clock() and found[2] is not None:
            principal: Principal | None = found[2]
        else:
            with self.store.read() as session:
                principal = services.principal_for_key_id(session, subject)
            if principal is not None:
                principal = replace(principal, key_id=subject)
                self._remember(slot, subject, principal)
        expires_at = principal.expires_at if principal is not None else None
        if expires_at is not None and expires_at <= now_ms():
            return None
        return principal

    def forget(self) -> None:
        """Drop every cached resolution (after a change to users, roles or keys)."""
        with self._lock:
            self._cache.clear()

    def _remember(self, slot: str, key_id: str, principal: Principal) -> None:
        with self._lock:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[slot] = (self._clock() + self.ttl_s, key_id, principal)

    # -- may they ---------------------------------------------------------------------------
    async def authorize(self, request: Request, principal: Principal) -> None:
        """``PermissionDenied`` naming the role the request's route needs, when the
        principal's role is lower. Reads the JSON body only for a route whose rule looks at it,
        and only when the principal is below maintainer."""
        method = request.method
        template, rule = self.routes.lookup(request.app, request.scope.get("route"), method)
        body: Any = None
        if rule.alias_field and rank(principal.role) < rank(MAINTAINER):
            try:
                body = json.loads(await request.body() or b"null")
            except ValueError:
                body = None  # the route answers the malformed body itself
        need, protected = rule.needs(request.scope.get("path_params", {}), body)
        action = f"{method} {template}"
        if protected is not None:
            action += f" on the protected alias '{protected}'"
        require_role(principal.role, need, principal.name, action, principal.workspace)

    def needed_role(self, request: Request) -> str:
        """The role the request's route needs, ignoring any body (for tests and benches)."""
        _, rule = self.routes.lookup(request.app, request.scope.get("route"), request.method)
        return rule.needs(request.scope.get("path_params", {}))[0]


def _digest(kind: str, value: str) -> str:
    """The cache slot of a key or a session subject: the secret itself is not kept."""
    return kind + hashlib.sha256(value.encode()).hexdigest()
