"""Users, their roles and their API keys over a session (never committed here).

Every write names who does it (``actor``, a :class:`~opsloop.kernel.identity.Principal`): a role
can be granted only up to the granter's own, and a key only up to its user's role, so no call
makes anyone more powerful than the caller already is. Keys of other users are an admin's
business; anyone may create, list and revoke their own.
"""

from __future__ import annotations

import difflib
import re
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import PermissionDenied
from opsloop.governance import keys as secrets
from opsloop.governance.entities import ApiKey
from opsloop.governance.entities import KeyCreate
from opsloop.governance.entities import NewApiKey
from opsloop.governance.entities import User
from opsloop.governance.entities import UserCreate
from opsloop.governance.key_limits import KeyLimitsChange
from opsloop.governance.key_limits import KeyLimitsOut
from opsloop.governance.key_limits import LimitedApiKey
from opsloop.governance.roles import ADMIN
from opsloop.governance.roles import DEFAULT_WORKSPACE
from opsloop.governance.roles import check_role
from opsloop.governance.roles import lower_role
from opsloop.governance.roles import rank
from opsloop.governance.roles import require_role
from opsloop.governance.tables import ApiKeyRow
from opsloop.governance.tables import UserRoleRow
from opsloop.governance.tables import UserRow
from opsloop.governance.workspaces import get_workspace
from opsloop.kernel.identity import Principal
from opsloop.kernel.timeutil import now_ms

__all__ = [
    "check_user_name",
    "create_key",
    "create_user",
    "get_user",
    "key_limits",
    "list_keys",
    "list_users",
    "principal_for_key",
    "principal_for_key_id",
    "revoke_key",
    "set_key_limits",
    "set_role",
]

# a user's grant in the default workspace, joined to the user
_DEFAULT_ROLE = (UserRoleRow.user_id == UserRow.id) & (UserRoleRow.workspace == DEFAULT_WORKSPACE)
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")


def check_user_name(name: str) -> str:
    """``name`` if it is a valid user name; else ``InvalidInput`` saying what is allowed."""
    if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid user name {str(name)[:100]!r}: up to 100 letters, digits, '.', '_', '-' "
            "or '@', starting with a letter or digit"
        )
    return name


def _grant_check(actor: Principal, role: str, whom: str) -> None:
    if rank(role) > rank(actor.role):
        raise PermissionDenied(
            f"{actor.name} cannot grant '{role}' to {whom}: a role above your own "
            f"('{actor.role}') cannot be granted",
            details={"required_role": role, "role": actor.role, "workspace": actor.workspace},
        )


def _user(row: UserRow, role: str, workspace: str = DEFAULT_WORKSPACE) -> User:
    return User(
        id=row.id, name=row.name, role=role, workspace=workspace,
        is_service=row.is_service, created_at=row.created_at, created_by=row.created_by,
        disabled_at=row.disabled_at,
    )  # fmt: skip


def _user_row(session: Session, name: str) -> UserRow:
    row = session.scalars(select(UserRow).where(UserRow.name == name)).first()
    if row is None:
        names = session.scalars(select(UserRow.name)).all()
        near = difflib.get_close_matches(str(name), names, n=1)
        hint = f": did you mean {near[0]!r}?" if near else ""
        raise NotFound(f"user {str(name)[:100]!r} does not exist{hint}")
    return row


def _role_of(session: Session, user_id: str) -> str | None:
    return session.scalar(
        select(UserRoleRow.role).where(
            UserRoleRow.user_id == user_id, UserRoleRow.workspace == DEFAULT_WORKSPACE
        )
    )


def create_user(session: Session, body: UserCreate, actor: Principal) -> User:
    """Create a user (or a service account) with a role in the default workspace.

    Raises:
        InvalidInput: A malformed name or an unknown role.
        PermissionDenied: The role is above the actor's own.
        Conflict: A user of that name exists.
    """
    name, role = check_user_name(body.name), check_role(body.role)
    _grant_check(actor, role, name)
    if session.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists")
    now = now_ms()
    row = UserRow(id=uuid.uuid4().hex, name=name, is_service=body.service, created_at=now,
                  created_by=actor.name)  # fmt: skip
    session.add(row)
    session.flush()
    session.add(UserRoleRow(user_id=row.id, workspace=DEFAULT_WORKSPACE, role=role,
                            granted_at=now, granted_by=actor.name))  # fmt: skip
    session.flush()
    return _user(row, role)


def get_user(session: Session, name: str) -> User:
    """One user. ``NotFound`` when there is none of that name."""
    row = _user_row(session, name)
    return _user(row, _role_of(session, row.id) or "viewer")


def list_users(session: Session) -> list[User]:
    """Every user and service account, by name, with their role in the default workspace."""
    rows = session.execute(
        select(UserRow, UserRoleRow.role)
        .outerjoin(UserRoleRow, _DEFAULT_ROLE)
        .order_by(UserRow.name)
    ).all()
    return [_user(row, role or "viewer") for row, role in rows]


def set_role(
    session: Session, name: str, role: str, actor: Principal, workspace: str = DEFAULT_WORKSPACE
) -> User:
    """Give ``name`` the role ``role`` in ``workspace``.

    Raises:
        InvalidInput: An unknown role.
        NotFound: No such user, or no such workspace.
        PermissionDenied: The role is above the actor's own, or the actor would take the last
            admin's role away (the server would have no one left to manage it).
    """
    check_role(role)
    row = _user_row(session, name)
    get_workspace(session, workspace)
    _grant_check(actor, role, name)
    grant = session.get(UserRoleRow, (row.id, workspace))
    if workspace == DEFAULT_WORKSPACE and grant is not None and grant.role == ADMIN != role:
        admins = session.scalars(
            select(UserRoleRow.user_id)
            .join(UserRow, UserRow.id == UserRoleRow.user_id)
            .where(
                UserRoleRow.workspace == DEFAULT_WORKSPACE,
                UserRoleRow.role == ADMIN,
                UserRow.disabled_at.is_(None),
            )  # a disabled admin manages nothing
        ).all()
        if row.id in admins and len(admins) <= 1:
            raise PermissionDenied(f"{name} is the last admin: make another user admin first")
    if grant is None:
        session.add(UserRoleRow(user_id=row.id, workspace=workspace, role=role,
                                granted_at=now_ms(), granted_by=actor.name))  # fmt: skip
    else:
        grant.role, grant.granted_at, grant.granted_by = role, now_ms(), actor.name
    session.flush()
    return _user(row, role, workspace)


def _api_key(row: ApiKeyRow, user: str) -> ApiKey:
    return ApiKey(
        id=row.id, user=user, name=row.name, prefix=row.prefix, role=row.role,
        created_at=row.created_at, created_by=row.created_by, expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )  # fmt: skip


def _limits(row: ApiKeyRow) -> KeyLimitsOut:
    return KeyLimitsOut.model_validate({"rpm": row.rpm, "tpm": row.tpm,
                                        "budget_usd": row.budget_usd,
                                        "budget_period": row.budget_period})  # fmt: skip


def _limited_key(row: ApiKeyRow, user: str) -> LimitedApiKey:
    return LimitedApiKey(**_api_key(row, user).model_dump(), limits=_limits(row))


def _owner_check(actor: Principal, owner: str, action: str) -> None:
    if owner != actor.name:
        require_role(actor.role, ADMIN, actor.name, f"{action} another user's key")


def create_key(session: Session, body: KeyCreate, actor: Principal) -> NewApiKey:
    """A new key for ``body.user`` (default: the actor); the secret is in the answer only.

    Raises:
        InvalidInput: A blank name, an unknown role or a name over 250 characters.
        NotFound: No such user.
        PermissionDenied: A key for another user by a non-admin, or a key role above the
            user's own role.
    """
    owner = body.user or actor.name
    name = body.name.strip()
    if not name or len(name) > 250:
        raise InvalidInput("a key needs a name of 1 to 250 characters (what it is for)")
    _owner_check(actor, owner, "creating")
    user = _user_row(session, owner)
    user_role = _role_of(session, user.id) or "viewer"
    if body.role is not None:
        check_role(body.role)
        if rank(body.role) > rank(user_role):
            raise PermissionDenied(
                f"a key of {owner} cannot carry '{body.role}': {owner} is '{user_role}', and a "
                "key cannot grant a role above its user's own",
                details={"required_role": body.role, "role": user_role,
                         "workspace": DEFAULT_WORKSPACE},
            )  # fmt: skip
    secret = secrets.new_key()
    now = now_ms()
    row = ApiKeyRow(
        id=uuid.uuid4().hex, user_id=user.id, name=name,
        prefix=secret[: secrets.PREFIX_LENGTH], key_hash=secrets.hash_key(secret),
        role=body.role, created_at=now, created_by=actor.name,
        expires_at=now + body.expires_in_s * 1000 if body.expires_in_s else None,
        revoked_at=None,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return NewApiKey(key=_api_key(row, owner), secret=secret)


def list_keys(session: Session, actor: Principal, user: str | None = None) -> list[LimitedApiKey]:
    """Keys, newest first: the actor's own, or ``user``'s (``"*"``: everyone's; admins only).

    Raises:
        NotFound: No such user.
        PermissionDenied: Another user's keys for a non-admin.
    """
    owner = user or actor.name
    query = select(ApiKeyRow, UserRow.name).join(UserRow, UserRow.id == ApiKeyRow.user_id)
    if owner == "*":
        require_role(actor.role, ADMIN, actor.name, "listing everyone's keys")
    else:
        _owner_check(actor, owner, "listing")
        query = query.where(ApiKeyRow.user_id == _user_row(session, owner).id)
    rows = session.execute(query.order_by(ApiKeyRow.created_at.desc(), ApiKeyRow.id)).all()
    return [_limited_key(row, name) for row, name in rows]


def revoke_key(session: Session, key_id: str, actor: Principal) -> ApiKey:
    """Revoke a key by id (or by its listed prefix); revoking twice is no error.

    Raises:
        NotFound: No such key, or a prefix that several keys share.
        PermissionDenied: Another user's key for a non-admin.
    """
    row, owner = _key_row(session, key_id)
    _owner_check(actor, owner, "revoking")
    if row.revoked_at is None:
        row.revoked_at = now_ms()
        session.flush()
    return _api_key(row, owner)


def _key_row(session: Session, key_id: str) -> tuple[ApiKeyRow, str]:
    """A key's row and its user's name, by id or listed prefix; ``NotFound`` otherwise."""
    column = ApiKeyRow.prefix if key_id.startswith(secrets.KEY_PREFIX) else ApiKeyRow.id
    rows = session.execute(
        select(ApiKeyRow, UserRow.name)
        .join(UserRow, UserRow.id == ApiKeyRow.user_id)
        .where(column == key_id[:64])
    ).all()
    if len(rows) != 1:
        shared = " (several keys share that prefix: use the id)" if rows else ""
        raise NotFound(f"no API key {key_id[:64]!r}{shared}")
    row, owner = rows[0]
    return row, owner


def set_key_limits(
    session: Session, key_id: str, change: KeyLimitsChange, actor: Principal
) -> LimitedApiKey:
    """Change what a key may use through the gateway (see :mod:`.key_limits`): an admin's
    call, since a key's owner could otherwise lift their own budget.

    Raises:
        InvalidInput: A change that changes nothing, or a period for a key without a budget.
        NotFound: No such key, or a prefix that several keys share.
        PermissionDenied: The actor is not an admin.
    """
    require_role(actor.role, ADMIN, actor.name, "changing a key's limits")
    if change.is_empty():
        raise InvalidInput("nothing to change: give rpm, tpm, budget_usd, budget_period or clear")
    row, owner = _key_row(session, key_id)
    if change.clear:
        row.rpm = row.tpm = row.budget_usd = row.budget_period = None
    row.rpm = change.rpm if change.rpm is not None else row.rpm
    row.tpm = change.tpm if change.tpm is not None else row.tpm
    row.budget_usd = change.budget_usd if change.budget_usd is not None else row.budget_usd
    if row.budget_usd is None and change.budget_period is not None:
        raise InvalidInput("a budget period needs a budget: give budget_usd too")
    if row.budget_usd is not None:
        row.budget_period = change.budget_period or row.budget_period or "month"
    session.flush()
    return _limited_key(row, owner)


def key_limits(session: Session, key_id: str) -> KeyLimitsOut | None:
    """The limits of the key ``key_id`` (its id, as the auth check resolved it), or None when
    there is no such key. What the gateway asks on every request, cached there."""
    row = session.get(ApiKeyRow, key_id[:32])
    return _limits(row) if row is not None else None


def principal_for_key(session: Session, secret: str) -> tuple[str, Principal] | None:
    """The key id and the principal ``secret`` authenticates, or None when it is unknown,
    expired or revoked."""
    if not secrets.looks_like_key(secret):
        return None
    return _principal(session, ApiKeyRow.key_hash == secrets.hash_key(secret))


def principal_for_key_id(session: Session, key_id: str) -> Principal | None:
    """The principal of a web session opened with the key ``key_id`` (None: the key was
    revoked or expired since, or its user is gone): signing in keeps the key's limits."""
    found = _principal(session, ApiKeyRow.id == key_id[:32])
    return found[1] if found is not None else None


def _principal(session: Session, which: Any) -> tuple[str, Principal] | None:
    found = session.execute(
        select(
            ApiKeyRow.id,
            ApiKeyRow.role,
            ApiKeyRow.expires_at,
            ApiKeyRow.revoked_at,
            UserRow.id,
            UserRow.name,
            UserRow.is_service,
            UserRoleRow.role,
        )
        .join(UserRow, UserRow.id == ApiKeyRow.user_id)
        .join(UserRoleRow, _DEFAULT_ROLE)
        .where(which, UserRow.disabled_at.is_(None))  # a disabled user's keys open nothing
    ).first()
    if found is None:
        return None
    key_id, cap, expires_at, revoked_at, user_id, name, is_service, role = found
    if revoked_at is not None or (expires_at is not None and expires_at <= now_ms()):
        return None
    grants = session.execute(
        select(UserRoleRow.workspace, UserRoleRow.role).where(UserRoleRow.user_id == user_id)
    ).all()
    principal = Principal(
        name=name, role=lower_role(role, cap), auth="users", user_id=user_id,
        is_service=is_service, expires_at=expires_at,
        roles=tuple(sorted((ws, lower_role(granted, cap)) for ws, granted in grants)),
    )  # fmt: skip
    return key_id, principal
