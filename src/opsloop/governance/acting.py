"""Background work done on behalf of the user who asked for it.

A server's scheduler, retraining loop and rollout controller do work later, on threads of their
own, with no request around: without this, everything they record is authored by the server's
OS user (:func:`opsloop.kernel.identity.current_user` falls back to it) or by the automation's
name, and nobody could tell whose trigger, loop or rollout it was. So each runs its work with
:func:`run_as`, acting as a principal built from the stored author (:func:`author_principal`:
the trigger's, the monitor's or the rollout's creator): what the work records through
``current_user()`` is that user's, and the automation is named alongside it, in the audit
event's action (``loop training via retraining-loop``) and in the reasons it writes, so neither
the user nor the machinery is lost.

:func:`run_as` calls the work in a context of its own: a worker thread shares nothing with the
thread that queued the work, and nothing of one job's identity leaks into the next.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.governance.roles import DEFAULT_WORKSPACE
from opsloop.governance.roles import VIEWER
from opsloop.governance.tables import UserRoleRow
from opsloop.governance.tables import UserRow
from opsloop.kernel.identity import Principal
from opsloop.kernel.identity import act_as

__all__ = ["BACKGROUND_AUTH", "author_principal", "run_as", "via"]

BACKGROUND_AUTH = "background"  # Principal.auth of work the server does on someone's behalf
T = TypeVar("T")


def author_principal(session: Session, author: str) -> Principal:
    """The principal to act as for work ``author`` asked for: their role in the default
    workspace when they are a user of this server, else ``viewer`` (the role is not checked
    in the background: no route is in between; it is what the work records it was done as)."""
    found = session.execute(
        select(UserRow.id, UserRow.is_service, UserRoleRow.role)
        .join(UserRoleRow, UserRoleRow.user_id == UserRow.id)
        .where(UserRow.name == author, UserRoleRow.workspace == DEFAULT_WORKSPACE)
    ).first()
    if found is None:
        return Principal(name=author, role=VIEWER, auth=BACKGROUND_AUTH)
    return Principal(name=author, role=found.role, auth=BACKGROUND_AUTH, user_id=found.id,
                     is_service=bool(found.is_service))  # fmt: skip


def run_as(principal: Principal | None, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a fresh context acting as ``principal`` (None: as the
    process itself, the OS user)."""

    def call() -> T:
        act_as(principal)
        return fn(*args, **kwargs)

    return contextvars.Context().run(call)


def via(text: str, automation: str) -> str:
    """``text`` naming the automation that did it for its author: ``"loop training via
    retraining-loop"``."""
    return f"{text} via {automation}"
