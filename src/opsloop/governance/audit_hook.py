"""Where the server writes audit events: once, for every state-changing request.

:class:`AuditMiddleware` wraps the whole app (``app/server.py`` installs it). For each request it
makes a request id (answered as ``X-Request-Id``); for a POST, PUT, PATCH or DELETE that
matched a route (except :data:`READ_ONLY_POSTS`, which change nothing) it also hashes the body
as the app reads it and makes sure one event is written before the answer leaves:

1. **In the route's own transaction**, when it has one: a SQLAlchemy ``before_commit`` hook
   (:func:`_before_commit`; for a plain write transaction, ``Store.write_plain``'s hook
   :func:`_before_plain_commit`) appends the event in the first write transaction the request
   commits on the server's store once the auth check let it through. The write and its event
   commit together, so neither exists without the other, and an audited write costs three small
   statements, not a second transaction (a second commit is a second fsync: on SQLite with
   ``synchronous=FULL`` that alone would cost more than the 5% the audit log may). The outcome
   recorded there is the route's declared status (201 for a create, else 200).
2. **Otherwise** (an error before anything was written: 401, 403, 404, 422; a page's form; a
   route that writes blobs or files only), in a transaction of its own, before the status line
   is sent, with the status being answered. Should a route answer another status than the one
   recorded with its transaction (it committed, then failed), a second event with the same
   request id records the status answered.

Either way the event is committed before the client hears back: an acknowledged write always
has its event, even if the process dies the moment after. A process that dies between a
route's commit and the answer loses nothing either: case 1 committed the event with the write.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from sqlalchemy import event
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from opsloop.config import DEFAULT_WORKSPACE
from opsloop.errors import OpsloopError
from opsloop.errors import StoreError
from opsloop.governance import audit
from opsloop.governance.policy import SAFE_METHODS
from opsloop.governance.policy import RouteRoles
from opsloop.store.database import Store
from opsloop.store.database import on_plain_commit
from opsloop.store.sql import DriverSql
from opsloop.web.deps import get_state
from opsloop.web.deps import request_workspace

__all__ = ["READ_ONLY_POSTS", "AuditMiddleware", "resource_of"]

# POSTs that only read (a search, a lookup, a download, a report, a prediction): no event.
READ_ONLY_POSTS = frozenset({
    ("POST", "/api/runs/search"),
    ("POST", "/api/blobs/missing"),
    ("POST", "/api/blobs/batch-download"),
    ("POST", "/api/drift-reports"),
    ("POST", "/v1/deployments/{name}/predict"),
    ("POST", "/api/2.0/mlflow/runs/search"),  # MLflow's API searches with POSTs
    ("POST", "/api/2.0/mlflow/experiments/search"),
    # Telemetry, not a change of state: spans are kept by their own ids and may arrive while
    # the database is away (the ingest spool holds them), when no event could be written.
    ("POST", "/v1/traces"),
    # A model call through the LLM gateway: traced as a span, not an admin write.
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/embeddings"),
})  # fmt: skip
log = logging.getLogger(__name__)
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
_CARRIES = "opsloop_audit"  # session.info key: the request whose event this transaction carries
_PENDING: ContextVar[_Pending | None] = ContextVar("opsloop_audit_pending", default=None)
_HOOKED = threading.Lock()
_hooked = False


def resource_of(template: str, params: dict[str, Any]) -> str:
    """The path with its parameters, without ``/api/``: ``/api/models/{name}/aliases/{alias}``
    with ``churn`` and ``champion`` is ``models/churn/aliases/champion``."""
    path = _PARAM.sub(lambda m: str(params.get(m.group(1), m.group(0))), template)
    return path.removeprefix("/api/").lstrip("/")


class _Pending:
    """One audited request in flight: what its event says, and whether it is written yet."""

    def __init__(
        self, scope: dict[str, Any], request_id: str, store: Store, workspace: str,
        routes: RouteRoles,
    ) -> None:  # fmt: skip
        self.scope, self.request_id, self.routes = scope, request_id, routes
        self.store, self.workspace = store, workspace  # the request's workspace, where it goes
        self.url = store.engine.url
        self.sha = hashlib.sha256()
        self.body_done = False
        self.lock = threading.Lock()
        self.claimed = False  # a transaction carrying the event is committing
        self.written: int | None = None  # the outcome committed with the route's transaction
        self.settled = False  # the answer's status line is out (or the request died)

    def route(self) -> APIRoute | None:
        route = self.scope.get("route")
        return route if isinstance(route, APIRoute) else None

    def audited(self) -> bool:
        return self.route() is not None and (self.scope["method"], self.template()) not in (
            READ_ONLY_POSTS
        )

    def template(self) -> str:
        return self.routes.lookup(self.scope["app"], self.scope.get("route"), self.scope["method"])[
            0
        ]

    def actor(self) -> str:
        state = self.scope.get("state") or {}
        principal = state.get("principal")
        if principal is not None:
            return str(principal.name)
        return str(state.get("actor") or "anonymous")

    def declared(self) -> int:
        route = self.route()
        return int(route.status_code or 200) if route is not None else 200

    def fields(self, outcome: int) -> dict[str, Any]:
        method, template = self.scope["method"], self.template()
        return {
            "actor": self.actor(), "action": f"{method} {template}",
            "resource": resource_of(template, self.scope.get("path_params") or {}),
            "request_id": self.request_id, "outcome": outcome, "workspace": self.workspace,
            "digest": self.sha.hexdigest() if self.body_done else None,
        }  # fmt: skip


def _claim(url: Any, read_only: bool) -> _Pending | None:
    """The audited request whose event a write transaction on the store at ``url`` is about
    to commit should carry, claimed for it; None when it carries none (no request, a read-only
    transaction, another store, a page, a read-only POST, or another transaction has it)."""
    pending = _PENDING.get()
    if pending is None or pending.settled or pending.written is not None:
        return None
    if read_only or (url is not pending.url and url != pending.url):  # the same store: same object
        return None
    route = pending.route()
    if route is None or not route.include_in_schema:
        return None  # pages answer redirects: their event is written with the status they answer
    if not pending.audited():
        return None
    with pending.lock:
        if pending.claimed:
            return None
        pending.claimed = True
    return pending


def _before_commit(session: Session) -> None:
    if _PENDING.get() is None:
        return  # outside an audited request (a session bound to a connection included)
    bind = session.get_bind()  # an engine, or a connection (``.engine`` is either's engine)
    read_only = bool(bind.get_execution_options().get("opsloop_read_only"))
    pending = _claim(bind.engine.url, read_only)
    if pending is not None:
        session.info[_CARRIES] = pending
        audit.append(session, **pending.fields(pending.declared()))


def _before_plain_commit(store: Store, sql: DriverSql) -> Callable[[bool], None] | None:
    """:func:`_before_commit` for a plain write transaction (``Store.write_plain``)."""
    pending = _claim(store.engine.url, read_only=False)
    if pending is None:
        return None
    audit.append_sql(sql, store.engine, **pending.fields(pending.declared()))

    def finished(committed: bool) -> None:
        if committed:
            pending.written = pending.declared()
        else:
            with pending.lock:
                pending.claimed = False

    return finished


def _after_commit(session: Session) -> None:
    pending = session.info.pop(_CARRIES, None)
    if pending is not None:
        pending.written = pending.declared()


def _after_rollback(session: Session) -> None:
    pending = session.info.pop(_CARRIES, None)
    if pending is not None:
        with pending.lock:
            pending.claimed = False


def _hook_sessions() -> None:
    """Listen to every session's commits and every plain write transaction's
    (``Store.write_plain``), once per process (a no-op outside an audited request: one context
    variable read)."""
    global _hooked
    with _HOOKED:
        if not _hooked:
            event.listen(Session, "before_commit", _before_commit)
            event.listen(Session, "after_commit", _after_commit)
            event.listen(Session, "after_rollback", _after_rollback)
            on_plain_commit(_before_plain_commit)
            _hooked = True


class AuditMiddleware:
    """ASGI middleware: a request id for every request, an audit event for every write (see the
    module docstring). The event goes to the store of the request's workspace (each has its
    own chain); ``store`` is the root store, for requests whose workspace is unknown."""

    def __init__(self, app: Any, store: Store) -> None:
        self.app, self.store = app, store
        self.routes = RouteRoles()
        _hook_sessions()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = audit.new_request_id()
        header = (b"x-request-id", request_id.encode())
        if scope["method"] in SAFE_METHODS:

            async def stamped(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", ()), header]
                await send(message)

            await self.app(scope, receive, stamped)
            return
        scope.setdefault("state", {})
        store, workspace = await self._target(scope)
        pending = _Pending(scope, request_id, store, workspace, self.routes)

        async def hashing() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request" and not pending.body_done:
                pending.sha.update(message.get("body", b""))
                pending.body_done = not message.get("more_body", False)
            return message

        async def audited(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                await self._settle(pending, int(message["status"]))
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = _PENDING.set(pending)
        try:
            await self.app(scope, hashing, audited)
        except BaseException:
            if not pending.settled:
                await self._settle(pending, 500)
            raise
        finally:
            _PENDING.reset(token)

    async def _target(self, scope: dict[str, Any]) -> tuple[Store, str]:
        """The store and name of the request's workspace; the root store when the name is
        malformed or unknown (the request is refused for it, and that refusal is recorded).
        Only another workspace's state may need building (a query): ``default``'s is at hand."""
        request = Request(scope)
        try:
            workspace = request_workspace(request)
            if workspace == DEFAULT_WORKSPACE:
                return self.store, workspace
            state = await run_in_threadpool(get_state, request)
            return state.store, workspace
        except OpsloopError:
            return self.store, DEFAULT_WORKSPACE

    async def _settle(self, pending: _Pending, status: int) -> None:
        """Write the request's event now, unless its transaction carried it with ``status``."""
        pending.settled = True
        if pending.written == status or not pending.audited():
            return
        await run_in_threadpool(self._append, pending.store, pending.fields(status))

    def _append(self, store: Store, fields: dict[str, Any]) -> None:
        try:
            with store.write() as session:
                audit.append(session, **fields)
        except StoreError as exc:
            # The store is away: the request wrote nothing there either (its own write would
            # have failed the same way), and its answer is already decided; a 500 instead
            # would tell the client less. Said loudly, for the operator.
            log.error("audit event not written, the store is unreachable: %s %s %s (%s)",
                      fields.get("action"), fields.get("outcome"), fields.get("request_id"),
                      exc.message)  # fmt: skip
