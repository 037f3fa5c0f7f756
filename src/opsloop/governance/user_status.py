"""Disabling and enabling users, over a session (never committed here).

A disabled user keeps everything they made, their role and their keys, but nothing of theirs
opens the server any more: every key (and the web sessions opened with one) is refused by
:func:`opsloop.governance.services.principal_for_key`'s query, and an OpenID sign-in is refused
before anything changes (:mod:`.oidc_users`). Enabling them gives back exactly what they had,
which is why this is not a deletion: someone who left keeps their name on the history they
wrote, and someone suspended comes back with the keys their jobs already hold.

Only an admin may do either, and the last enabled admin cannot be disabled (the server would
have no one left who can enable anyone): ``Conflict``. The caller's server forgets its cached
resolutions after the change (the REST route does it), so the change holds from the next
request on.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import Conflict
from opsloop.governance.entities import User
from opsloop.governance.roles import ADMIN
from opsloop.governance.roles import DEFAULT_WORKSPACE
from opsloop.governance.roles import require_role
from opsloop.governance.services import get_user
from opsloop.governance.tables import UserRoleRow
from opsloop.governance.tables import UserRow
from opsloop.kernel.identity import Principal
from opsloop.kernel.timeutil import now_ms

__all__ = ["enabled_admins", "set_disabled"]


def enabled_admins(session: Session) -> int:
    """How many users hold ``admin`` in the default workspace and are not disabled."""
    found = session.scalar(
        select(func.count())
        .select_from(UserRoleRow)
        .join(UserRow, UserRow.id == UserRoleRow.user_id)
        .where(
            UserRoleRow.workspace == DEFAULT_WORKSPACE,
            UserRoleRow.role == ADMIN,
            UserRow.disabled_at.is_(None),
        )
    )
    return int(found or 0)


def set_disabled(session: Session, name: str, disabled: bool, actor: Principal) -> User:
    """Disable (``disabled=True``) or enable the user ``name``; doing it twice is no error.

    Raises:
        NotFound: No such user (the closest name is suggested).
        PermissionDenied: The actor is not an admin.
        Conflict: ``name`` is the last enabled admin.
    """
    verb = "disabling" if disabled else "enabling"
    require_role(actor.role, ADMIN, actor.name, f"{verb} a user")
    user = get_user(session, name)
    row = session.get_one(UserRow, user.id)
    if disabled and row.disabled_at is None:
        if user.role == ADMIN and enabled_admins(session) <= 1:
            raise Conflict(f"{name} is the last enabled admin: make another user admin first")
        row.disabled_at = now_ms()
    elif not disabled:
        row.disabled_at = None
    session.flush()
    return get_user(session, name)
