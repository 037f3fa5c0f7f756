"""Dependencies shared by every domain's router: the store, sessions, blobs, auth.

Routes own their transaction: a ``WriteSession`` is committed after the route returns and
rolled back if it raises; services never commit. ``Annotated`` aliases keep signatures short,
and give every listing the same page size bounds (``MaxResults``).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from opsloop.config import Settings
from opsloop.errors import PermissionDenied, Unauthenticated
from opsloop.store.blobs import BlobStore
from opsloop.store.database import Store

__all__ = [
    "TOKEN_COOKIE",
    "AppState",
    "Blobs",
    "MaxResults",
    "ReadSession",
    "State",
    "WriteSession",
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


TOKEN_COOKIE = "opsloop_token"


def require_token(request: Request, state: State) -> None:
    """401 without a token, 403 with a wrong one, when the server has a token set.

    API clients send ``Authorization: Bearer <token>``; the web UI's login page stores the
    same token in an HttpOnly, SameSite=Strict cookie, which is accepted too.
    """
    expected = state.settings.token
    if not expected:
        return
    given = _bearer(request) or request.cookies.get(TOKEN_COOKIE, "")
    if not given:
        raise Unauthenticated("this server requires a token: send 'Authorization: Bearer <token>'")
    if not token_matches(given, expected):
        raise PermissionDenied("the token is not valid for this server")


def require_metrics_token(request: Request, state: State) -> None:
    """``/metrics``'s guard: open when the server has neither a token nor a scrape token set;
    else 401 without a token, 403 unless it is the server token or the scrape token
    (``metrics_token``, which opens nothing but ``/metrics``)."""
    accepted = [t for t in (state.settings.token, state.settings.metrics_token) if t]
    if not accepted:
        return
    given = _bearer(request) or request.cookies.get(TOKEN_COOKIE, "")
    if not given:
        raise Unauthenticated(
            "this server's /metrics requires a token: send 'Authorization: Bearer <token>' "
            "with the server token or the scrape token (--metrics-token)"
        )
    if not any(token_matches(given, expected) for expected in accepted):
        raise PermissionDenied("the token is not valid for this server's /metrics")


def token_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def _bearer(request: Request) -> str:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else ""
