"""Dependencies shared by every domain's router: the store, sessions, blobs, auth.

Routes own their transaction: a ``WriteSession`` is committed after the route returns and
rolled back if it raises; services never commit. ``Annotated`` aliases keep signatures short,
and give every listing the same page size bounds (``MaxResults``).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from opsloop.config import Settings
from opsloop.errors import PermissionDenied, Unauthenticated
from opsloop.store.blobs import BlobStore
from opsloop.store.database import Store
from opsloop.web.csrf import UNSAFE_METHODS, check_origin, check_token
from opsloop.web.sessions import find_session
from opsloop.web.throttle import FailureLimiter

__all__ = [
    "SESSION_COOKIE",
    "AppState",
    "Blobs",
    "MaxResults",
    "ReadSession",
    "State",
    "WriteSession",
    "check_token_guess",
    "client_address",
    "require_metrics_token",
    "require_token",
    "token_matches",
]


@dataclass
class AppState:
    """What the app serves from, built once by ``create_app``."""

    settings: Settings
    store: Store
    blobs: BlobStore
    trace_spool: Any = None  # opsloop.llm.tracing.spool.IngestSpool, set by create_app
    client: Any = None  # opsloop.Client over this server's own store, set by create_app
    serving: Any = None  # opsloop.serving.runtime.ServingRuntime, set by create_app
    launcher: Any = None  # opsloop.pipelines.launcher.Launcher, set by the app's lifespan
    lineage: Any = None  # opsloop.lineage.walk.LineageCatalog, set by create_app
    failures: FailureLimiter = field(default_factory=FailureLimiter)  # failed tokens per IP


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.opsloop
    return state


State = Annotated[AppState, Depends(get_state)]


def _write_session(state: State) -> Iterator[Session]:
    with state.store.write() as session:
        yield session


def _read_session(state: State) -> Iterator[Session]:
    with state.store.read() as session:
        yield session


def _blobs(state: State) -> BlobStore:
    return state.blobs


# scope="function": the transaction commits before the response is sent, so a client that
# got a 2xx can rely on its write being visible to its next request.
WriteSession = Annotated[Session, Depends(_write_session, scope="function")]
ReadSession = Annotated[Session, Depends(_read_session, scope="function")]
Blobs = Annotated[BlobStore, Depends(_blobs)]
MaxResults = Annotated[int, Query(ge=1, le=10_000)]  # page size; each route sets its default


SESSION_COOKIE = "opsloop_session"


async def require_token(request: Request, state: State) -> None:
    """Who may call a route, when the server has a token set; and, for browsers, from where.

    API clients send ``Authorization: Bearer <token>``: 403 with a wrong one (counted by the
    failure limit, 429 past it), and nothing else is asked of them. The web UI sends the
    session cookie its login opened (:mod:`opsloop.web.sessions`): 401 when the session is
    unknown, expired or signed out; its writes must come from this server's own pages and carry
    the session's CSRF token (:mod:`opsloop.web.csrf`), else 403. Without a server token every
    route is open, and writes from another origin are still refused (a page elsewhere must not
    drive an open server on the same machine).
    """
    expected = state.settings.token
    bearer = _bearer(request)
    if bearer and expected:
        check_token_guess(request, state, bearer, [expected])
        return
    if not expected:
        if request.method in UNSAFE_METHODS and not bearer:
            check_origin(request)
        return
    session_id = request.cookies.get(SESSION_COOKIE, "")
    if not session_id:
        raise Unauthenticated("this server requires a token: send 'Authorization: Bearer <token>'")
    live = await run_in_threadpool(find_session, state.store, expected, session_id)
    if live is None:
        raise Unauthenticated("your session has expired or was signed out: sign in again")
    request.state.subject = live.subject
    request.state.csrf_token = live.csrf_token  # the pages' forms carry it
    if request.method in UNSAFE_METHODS:
        check_origin(request)
        await check_token(request, live.csrf_token)


def require_metrics_token(request: Request, state: State) -> None:
    """``/metrics``'s guard: open when the server has neither a token nor a scrape token set;
    else 401 without a token, 403 unless it is the server token or the scrape token
    (``metrics_token``, which opens nothing but ``/metrics``), or a signed-in session."""
    accepted = [t for t in (state.settings.token, state.settings.metrics_token) if t]
    if not accepted:
        return
    given = _bearer(request)
    if given:
        check_token_guess(request, state, given, accepted)
        return
    session_id = request.cookies.get(SESSION_COOKIE, "")
    token = state.settings.token
    if session_id and token and find_session(state.store, token, session_id) is not None:
        return
    raise Unauthenticated(
        "this server's /metrics requires a token: send 'Authorization: Bearer <token>' "
        "with the server token or the scrape token (--metrics-token)"
    )


def check_token_guess(request: Request, state: State, given: str, accepted: list[str]) -> None:
    """Pass if ``given`` is one of the ``accepted`` tokens; else count a failure for the client
    and 403. A client over the failure limit gets 429 before its token is even compared."""
    client = client_address(request)
    state.failures.check(client)
    if not any(token_matches(given, expected) for expected in accepted):
        state.failures.fail(client)
        raise PermissionDenied("the token is not valid for this server")


def client_address(request: Request) -> str:
    """The client's IP (the proxy's ``X-Forwarded-For`` where uvicorn trusts the proxy)."""
    return request.client.host if request.client else "unknown"


def token_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def _bearer(request: Request) -> str:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else ""
