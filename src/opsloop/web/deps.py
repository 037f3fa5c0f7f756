"""Dependencies shared by every domain's router: the store, sessions, blobs, auth.

Routes own their transaction: a ``WriteSession`` is committed after the route returns and
rolled back if it raises; services never commit. ``Annotated`` aliases keep signatures short,
and give every listing the same page size bounds (``MaxResults``).
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Annotated
from typing import Any
from typing import Protocol

from fastapi import Depends
from fastapi import Query
from fastapi import Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from opsloop.config import DEFAULT_WORKSPACE
from opsloop.config import Settings
from opsloop.config import check_workspace_name
from opsloop.errors import NotFound
from opsloop.errors import PermissionDenied
from opsloop.errors import Unauthenticated
from opsloop.kernel.code_policy import ANY_CODE
from opsloop.kernel.code_policy import CodePolicy
from opsloop.kernel.identity import Principal
from opsloop.kernel.identity import act_as
from opsloop.kernel.identity import current_user
from opsloop.store.blobs import BlobStore
from opsloop.store.database import Store
from opsloop.web.csrf import UNSAFE_METHODS
from opsloop.web.csrf import check_origin
from opsloop.web.csrf import check_token
from opsloop.web.sessions import find_session
from opsloop.web.throttle import FailureLimiter

__all__ = [
    "SESSION_COOKIE",
    "AppState",
    "Authorizer",
    "Blobs",
    "MaxResults",
    "PageQuery",
    "PageRequest",
    "ReadSession",
    "State",
    "WriteSession",
    "authenticate_key",
    "check_token_guess",
    "client_address",
    "require_metrics_token",
    "require_token",
    "session_secret",
    "token_matches",
    "version_ref",
]


class Authorizer(Protocol):
    """What ``users`` mode adds to the auth check, handed in by the app (the governance
    domain's ``UserAuthorizer``: the web floor never imports a domain). The methods named
    blocking query the store: call them from a thread."""

    session_secret: str  # the HMAC key of the sessions it opens (opsloop.web.sessions)

    def cached(self, key: str) -> tuple[str, Principal] | None:
        """The key id and principal of a recently seen, still valid ``key``; else None."""

    def claim_refresh(self, key: str) -> bool:
        """True (once) when the cached resolution of ``key`` should be looked up again in the
        background (with ``principal_for_key``) before it expires."""

    def principal_for_key(self, key: str) -> tuple[str, Principal] | None:
        """The key id and principal of ``key``; None: unknown, expired or revoked. Blocking."""

    def principal_for_session(self, subject: str) -> Principal | None:
        """The principal of a session's subject; None when it no longer holds. Blocking."""

    async def authorize(self, request: Request, principal: Principal) -> None:
        """``PermissionDenied`` naming the role the request's route needs, when the
        principal's is lower."""

    def forget(self) -> None:
        """Drop cached resolutions (users, roles or keys changed)."""


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
    authorizer: Authorizer | None = None  # users mode: set by create_app, else None
    code: CodePolicy = ANY_CODE  # what requests may name as code: set by create_app
    gateway: Any = None  # opsloop.llm.gateway.proxy.Gateway: this workspace's LLM routes
    # The root state only (set by create_app): the other workspaces' states, built and started
    # on demand (opsloop.app.workspaces.WorkspaceStates), and the path prefixes that act on
    # the root store whatever workspace a request names (users, keys, the workspaces' list).
    workspaces: Any = None
    global_paths: tuple[str, ...] = ()


WORKSPACE_HEADER = "X-Opsloop-Workspace"
WORKSPACE_COOKIE = "opsloop_workspace"  # the web UI's choice, set by a page opened ?workspace=


def request_workspace(request: Request) -> str:
    """The workspace a request works in: its ``X-Opsloop-Workspace`` header, else a
    ``workspace`` query parameter (a link to a page), else the browser's last choice (a
    cookie), else ``default``; always ``default`` on the root state's global paths. A
    malformed name is a 400. Kept in the request's scope: the audit log, the auth check and
    the route's state each ask."""
    state = request.scope.setdefault("state", {})
    found: str | None = state.get(_WORKSPACE_KEY)
    if found is None:
        found = state[_WORKSPACE_KEY] = _named_workspace(request)
    return found


_WORKSPACE_KEY = "opsloop_workspace"


def _named_workspace(request: Request) -> str:
    root: AppState = request.app.state.opsloop
    if request.scope["path"].startswith(root.global_paths):
        return DEFAULT_WORKSPACE
    # The query string is parsed only when there is one: every request asks (the audit log
    # first), and MLflow's client logs a point a request, with none.
    name = (
        request.headers.get(WORKSPACE_HEADER)
        or (request.scope.get("query_string") and request.query_params.get("workspace"))
        or request.cookies.get(WORKSPACE_COOKIE)
    )
    return check_workspace_name(name) if name else DEFAULT_WORKSPACE


def get_state(request: Request) -> AppState:
    """The state of the request's workspace (the root state for ``default``); 404 naming the
    close ones when it does not exist."""
    root: AppState = request.app.state.opsloop
    workspace = request_workspace(request)
    if workspace == DEFAULT_WORKSPACE:
        return root
    if root.workspaces is None:
        raise NotFound(f"workspace {workspace!r}: this server serves the default one only")
    state: AppState = root.workspaces.state(workspace)
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


@dataclass(frozen=True)
class PageRequest:
    """The page a listing route is asked for: at most ``max_results`` items, from
    ``page_token`` on (None: the first page)."""

    max_results: int
    page_token: str | None


def _page_request(max_results: MaxResults = 100, page_token: str | None = None) -> PageRequest:
    return PageRequest(max_results, page_token)


# A listing's ``max_results`` (100 unless asked) and ``page_token`` query parameters, declared
# once for the routes that take them.
PageQuery = Annotated[PageRequest, Depends(_page_request)]


SESSION_COOKIE = "opsloop_session"


async def require_token(request: Request) -> None:
    """Who may call a route, when the server has a token set; and, for browsers, from where.

    API clients send ``Authorization: Bearer <token>``: 403 with a wrong one (counted by the
    failure limit, 429 past it), and nothing else is asked of them. The web UI sends the
    session cookie its login opened (:mod:`opsloop.web.sessions`): 401 when the session is
    unknown, expired or signed out; its writes must come from this server's own pages and carry
    the session's CSRF token (:mod:`opsloop.web.csrf`), else 403. Without a server token every
    route is open, and writes from another origin are still refused (a page elsewhere must not
    drive an open server on the same machine).

    In ``users`` mode (``state.authorizer`` set) the bearer is a user's API key and the session
    one that a key opened: an unknown, expired or revoked key is 401, and the route's role is
    then checked (403 naming the role it needs). The principal is recorded for the request
    (:func:`opsloop.kernel.identity.act_as`): it is the author of whatever the request writes.
    ``request.state.actor`` names the caller for the audit log once it is known (a user, ``token``,
    or an open server's own user). Keys, sessions and users live in the root store, so this
    check reads the root state whatever workspace the request works in; in ``users`` mode the
    role checked is the caller's role in that workspace (403 when it has none there).
    """
    state: AppState = request.app.state.opsloop
    if state.authorizer is not None:
        await _require_user(request, state, state.authorizer)
        return
    expected = state.settings.token
    bearer = _bearer(request)
    if bearer and expected:
        check_token_guess(request, state, bearer, [expected])
        request.state.actor = "token"  # who the audit log names: the token's holder
        return
    if not expected:
        if request.method in UNSAFE_METHODS and not bearer:
            check_origin(request)
        request.state.actor = current_user()  # an open server: its own user, as authors are
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
    request.state.actor = "token"


async def _require_user(request: Request, state: AppState, authorizer: Authorizer) -> None:
    key = _bearer(request)
    if key:
        _, principal = await authenticate_key(request, state, authorizer, key)
    else:
        session_id = request.cookies.get(SESSION_COOKIE, "")
        if not session_id:
            raise Unauthenticated(
                "this server requires an API key: send 'Authorization: Bearer <key>' "
                "(opsloop keys create, then OPSLOOP_TOKEN=<key>)"
            )
        secret = authorizer.session_secret
        live = await run_in_threadpool(find_session, state.store, secret, session_id)
        found = None
        if live is not None:
            found = await run_in_threadpool(authorizer.principal_for_session, live.subject)
        if live is None or found is None:
            raise Unauthenticated("your session has expired or was signed out: sign in again")
        principal = found
        request.state.subject = live.subject
        request.state.csrf_token = live.csrf_token
        if request.method in UNSAFE_METHODS:
            check_origin(request)
            await check_token(request, live.csrf_token)
    request.state.actor = principal.name  # known even when the role check refuses
    principal = await _in_workspace(request, state, principal)
    await authorizer.authorize(request, principal)
    request.state.principal = principal
    act_as(principal)


async def _in_workspace(request: Request, state: AppState, principal: Principal) -> Principal:
    """``principal`` acting in the request's workspace: 404 when that workspace does not exist,
    403 when the principal has no role there."""
    workspace = request_workspace(request)
    found = principal.in_workspace(workspace)
    if found is not None:
        return found
    if state.workspaces is not None:
        await run_in_threadpool(state.workspaces.check, workspace)  # 404 before "no role"
    raise PermissionDenied(
        f"{principal.name} has no role in workspace '{workspace}': an admin gives one with "
        f"`opsloop users set-role {principal.name} ROLE --workspace {workspace}`",
        details={"workspace": workspace, "role": None},
    )


async def authenticate_key(
    request: Request, state: AppState, authorizer: Authorizer, key: str
) -> tuple[str, Principal]:
    """The key id and principal of the API key ``key``; 401 when it is unknown, expired or
    revoked, counted by the client's failure limit (429 past it, before any look-up)."""
    found = authorizer.cached(key)
    if found is not None:
        if authorizer.claim_refresh(key):  # before it expires: no request waits for it
            looking = asyncio.get_running_loop().run_in_executor(
                None, authorizer.principal_for_key, key
            )
            looking.add_done_callback(_ignore_failure)
        return found
    client = client_address(request)
    state.failures.check(client)
    found = await run_in_threadpool(authorizer.principal_for_key, key)
    if found is None:
        state.failures.fail(client)
        raise Unauthenticated("the API key is not valid: unknown, expired or revoked")
    return found


def _ignore_failure(done: asyncio.Future[Any]) -> None:
    """A background look-up that failed (the store away) leaves the cached resolution to
    expire; the next request then asks, and answers what went wrong."""
    if not done.cancelled():
        done.exception()


def session_secret(state: AppState) -> str | None:
    """The HMAC key of this server's web sessions: the users-mode authorizer's, else the
    server token (None: an open server has no sessions)."""
    if state.authorizer is not None:
        return state.authorizer.session_secret
    return state.settings.token


async def require_metrics_token(request: Request, state: State) -> None:
    """``/metrics``'s guard: open when the server has neither a token nor a scrape token set
    (and is not in ``users`` mode); else 401 without a token, 403 unless it is the server token
    or the scrape token (``metrics_token``, which opens nothing but ``/metrics``), or a
    signed-in session. In ``users`` mode any valid API key is accepted too (401 otherwise)."""
    if state.authorizer is not None:
        given = _bearer(request)
        scrape = state.settings.metrics_token
        if given and scrape and token_matches(given, scrape):
            return
        await _require_user(request, state, state.authorizer)
        return
    await run_in_threadpool(_require_metrics_token, request, state)


def _require_metrics_token(request: Request, state: AppState) -> None:
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


def version_ref(name: str, selector: object) -> str:
    """The ``NAME@selector`` reference a version route's path stands for
    (``.../{name}/versions/{selector}``, where the selector is a number, an alias or
    ``latest``), as the services resolve it."""
    return f"{name}@{selector}"


def token_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def _bearer(request: Request) -> str:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else ""
