"""How often one client may guess the server token: failed logins and failed bearer tokens.

The server token is one shared secret, so every wrong guess — on the login form, in an
``Authorization: Bearer`` header, on ``/metrics`` — counts against the client's IP address in
one window. Past ``limit`` failures within ``window_s`` seconds, the IP's next attempts are
answered 429 with a ``Retry-After`` *before* the token is compared: a limit that still
checked the token would tell the right guess apart from the wrong ones. A request that
presents no token, or a valid session cookie (a session id is not guessable, and not the token),
is never counted nor refused; a correct token is never delayed (no sleep, a dict look-up).

The counts live in the process: with ``--workers N`` an IP gets up to N times the limit per
window, which still keeps a brute force of a real token out of reach. The IP is the one uvicorn
reports, i.e. ``X-Forwarded-For`` when the connection comes from a trusted proxy (uvicorn
trusts 127.0.0.1 by default).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections import deque
from collections.abc import Callable

from opsloop.errors import OpsloopError

__all__ = ["FAILURE_LIMIT", "FAILURE_WINDOW_S", "FailureLimiter", "TooManyFailures"]

FAILURE_LIMIT = 10
FAILURE_WINDOW_S = 60.0
_MAX_CLIENTS = 10_000  # IPs tracked at once; the least recently failing is forgotten first


class TooManyFailures(OpsloopError):
    """Too many failed tokens or logins from this client: wait ``retry_after`` seconds."""

    code = "TOO_MANY_FAILURES"
    http_status = 429
    exit_code = 1

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed sign-ins or tokens from this address: try again in {retry_after} s",
            details={"retry_after": retry_after},
        )
        self.retry_after = retry_after


class FailureLimiter:
    """Failures per client key (an IP) in a sliding window; thread-safe.

    ``check(key)`` raises :class:`TooManyFailures` while ``key`` has ``limit`` failures less than
    ``window_s`` old; ``fail(key)`` records one. Each key keeps at most ``limit`` timestamps.
    """

    def __init__(
        self,
        limit: int = FAILURE_LIMIT,
        window_s: float = FAILURE_WINDOW_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = _MAX_CLIENTS,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again (0: it may now)."""
        with self._lock:
            times = self._failures.get(key)
            if times is None or len(times) < self.limit:
                return 0
            left = times[0] + self.window_s - self._clock()
            if left <= 0:
                return 0
            return max(1, math.ceil(left))

    def check(self, key: str) -> None:
        """Raise :class:`TooManyFailures` while ``key`` is over its limit."""
        wait = self.retry_after(key)
        if wait:
            raise TooManyFailures(wait)

    def fail(self, key: str) -> None:
        """Count one failure for ``key``."""
        with self._lock:
            times = self._failures.pop(key, None) or deque(maxlen=self.limit)
            times.append(self._clock())
            self._failures[key] = times  # now the most recent: evicted last
            while len(self._failures) > self._max_clients:
                self._failures.popitem(last=False)
