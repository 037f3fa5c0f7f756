"""Who is acting: the name recorded as the author of what a call creates.

On the embedded store it is the OS user. A server records the principal it authenticated
instead: its auth check (``opsloop.web.deps.require_token``) calls :func:`act_as` for each
request, which sets a context variable that lives as long as the request's task (and is copied
into the thread a sync route runs in), so every service that asks :func:`current_user` during
that request records the principal, and nothing a client sends can change it. Without a request
(the CLI, the SDK, a server's scheduler thread) it stays the OS user.
"""

from __future__ import annotations

import functools
import getpass
from contextvars import ContextVar
from dataclasses import dataclass
from dataclasses import replace

__all__ = ["Principal", "act_as", "current_principal", "current_user", "os_user"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller, as the auth check resolved it for one request.

    Attributes:
        name: The user (or service account) name, recorded as the author.
        role: The caller's role in ``workspace`` (``viewer``, ``editor``, ``maintainer``,
            ``admin``): the lower of the user's role and the key's own cap, if it has one.
        auth: How it signed in: ``users`` (an API key or a session opened with one),
            ``token`` (the server token), ``open`` (no auth) or ``embedded`` (no server).
        workspace: The workspace the role holds in (the one the request works in).
        user_id: The user's id (empty outside ``users`` mode).
        is_service: A service account (a machine user), not a person.
        expires_at: When the credential stops working (epoch ms), if ever.
        key_id: The id of the API key it signed in with (empty without one): what the
            gateway's per-key limits are found by.
        roles: Its role in every workspace it has one in, as ``(workspace, role)`` pairs
            (each capped by the key like ``role``); see :meth:`in_workspace`.
    """

    name: str
    role: str
    auth: str
    workspace: str = "default"
    user_id: str = ""
    is_service: bool = False
    expires_at: int | None = None
    key_id: str = ""
    roles: tuple[tuple[str, str], ...] = ()

    def in_workspace(self, workspace: str) -> Principal | None:
        """The same caller acting in ``workspace`` with its role there; None when it has
        none."""
        if workspace == self.workspace:
            return self
        role = dict(self.roles).get(workspace)
        return None if role is None else replace(self, workspace=workspace, role=role)


_ACTING: ContextVar[Principal | None] = ContextVar("opsloop_principal", default=None)


def act_as(principal: Principal | None) -> None:
    """Record ``principal`` as the caller for the rest of the current context (one request)."""
    _ACTING.set(principal)


def current_principal() -> Principal | None:
    """The principal the server authenticated for this request, or None (no request, or a
    server without users)."""
    return _ACTING.get()


def current_user() -> str:
    """The author to record: the request's principal on a server in ``users`` mode, else the
    OS user (the embedded store, or a server with one token: its own user)."""
    principal = _ACTING.get()
    return principal.name if principal is not None else os_user()


@functools.cache
def os_user() -> str:
    """The OS user (looked up once)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
