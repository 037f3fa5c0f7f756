"""Who an OpenID Connect sign-in is, in this server's users: over a session, never committed here.

A person is their provider's ``(issuer, sub)``, kept in ``user_identities``: never the e-mail or
the user name the provider sends, which the person (or the provider's admin) can change, and
which another person may have held before. The first sign-in of an identity:

- links it to an existing user whose name is the identity's e-mail, only when the server allows
  it (``oidc_link_email``) and the provider says the address is verified
  (``email_verified: true``), the user is a person (not a service account) and has no identity
  from this provider yet; an admin who made ``alice@example.com`` by hand lets her keep it;
- else creates a user named by ``preferred_username``, else the e-mail, else ``sub`` (made
  unique with a suffix when the name is taken).

On every sign-in the role is set from the claims (:meth:`OidcConfig.role_for`): the provider's
groups are the source of truth, so a user moved out of a group loses the role at their next
sign-in. A creation, a link and a role change each append an audit event (actor ``oidc``). A
disabled user is refused before anything changes.

The sign-in ends with an API key of the user (a web session is opened with it, exactly as the
key login opens one, so revoking the key ends the session too; the CLI's ``login --oidc`` keeps
it): its name says where it came from, it expires, and the expired ones of earlier sign-ins are
deleted.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.governance import audit
from opsloop.governance import services
from opsloop.governance.entities import KeyCreate
from opsloop.governance.entities import NewApiKey
from opsloop.governance.oidc_config import OidcConfig
from opsloop.governance.oidc_provider import SignInRefused
from opsloop.governance.roles import DEFAULT_WORKSPACE
from opsloop.governance.tables import ApiKeyRow
from opsloop.governance.tables import UserIdentityRow
from opsloop.governance.tables import UserRoleRow
from opsloop.governance.tables import UserRow
from opsloop.kernel.identity import Principal
from opsloop.kernel.timeutil import now_ms

__all__ = ["AUDIT_ACTOR", "SignedIn", "sign_in"]

AUDIT_ACTOR = "oidc"  # who the audit log names for changes the provider's claims make
_NOT_NAME = re.compile(r"[^A-Za-z0-9._@-]+")


@dataclass(frozen=True)
class SignedIn:
    """A sign-in that succeeded: the user, their role now, and the key minted for it."""

    user: str
    role: str
    key: NewApiKey
    created: bool = False
    previous_role: str | None = None  # the role before this sign-in changed it


def sign_in(
    session: Session, config: OidcConfig, claims: dict[str, Any], *, key_name: str, key_ttl_s: int
) -> SignedIn:
    """Find or create the user of the checked ID token ``claims``, set their role from the
    claims, and mint an API key named ``key_name`` expiring in ``key_ttl_s`` seconds.

    Raises:
        SignInRefused: The user is disabled, is a service account, or earns no role.
    """
    subject, issuer = str(claims["sub"])[:250], config.issuer
    who = _display(claims)
    role = config.role_for(claims)
    if role is None:
        raise SignInRefused(
            f"{who} is in none of the groups this server maps to a role (claim "
            f"'{config.role_claim}'): ask an admin to add you to one"
        )
    now = now_ms()
    identity = session.get(UserIdentityRow, (issuer, subject))
    created = False
    if identity is not None:
        user = session.get(UserRow, identity.user_id)
        if user is None:  # deleted since: the foreign key's cascade normally removes it
            raise SignInRefused(f"the user of {who} was deleted: ask an admin")
    else:
        user = _linkable(session, config, claims)
        if user is None:
            user = _create_user(session, claims, role)
            created = True
        identity = UserIdentityRow(issuer=issuer, subject=subject, user_id=user.id,
                                   created_at=now, last_login_at=now)  # fmt: skip
        session.add(identity)
        action = "create-user" if created else "link-identity"
        _audit(session, f"oidc {action} {issuer} {subject}", user.name)
    if user.disabled_at is not None:
        raise SignInRefused(f"user {user.name} is disabled: ask an admin to enable it")
    if user.is_service:
        raise SignInRefused(f"{user.name} is a service account: it signs in with its API key")
    identity.last_login_at, identity.email = now, _email(claims)
    previous = _set_role(session, user, role, now)
    actor = Principal(name=user.name, role=role, auth="users", user_id=user.id)
    session.execute(
        delete(ApiKeyRow).where(
            ApiKeyRow.user_id == user.id, ApiKeyRow.name == key_name[:250],
            ApiKeyRow.expires_at <= now,
        )
    )  # fmt: skip
    key = services.create_key(session, KeyCreate(name=key_name, expires_in_s=key_ttl_s), actor)
    session.flush()
    return SignedIn(user=user.name, role=role, key=key, created=created, previous_role=previous)


def _display(claims: dict[str, Any]) -> str:
    for name in ("email", "preferred_username", "sub"):
        if isinstance(claims.get(name), str) and claims[name]:
            return str(claims[name])[:100]
    return "this account"


def _email(claims: dict[str, Any]) -> str | None:
    email = claims.get("email")
    return email[:320] if isinstance(email, str) and email else None


def _linkable(session: Session, config: OidcConfig, claims: dict[str, Any]) -> UserRow | None:
    """The existing user this first sign-in takes over, if the server allows it (module doc)."""
    email = _email(claims)
    if not config.link_email or email is None or claims.get("email_verified") is not True:
        return None
    user = session.scalars(select(UserRow).where(func.lower(UserRow.name) == email.lower())).first()
    if user is None or user.is_service:
        return None
    linked = session.scalar(
        select(UserIdentityRow.subject).where(
            UserIdentityRow.user_id == user.id, UserIdentityRow.issuer == config.issuer
        )
    )
    return None if linked is not None else user


def _create_user(session: Session, claims: dict[str, Any], role: str) -> UserRow:
    base = ""
    for claim in ("preferred_username", "email", "sub"):
        value = claims.get(claim)
        if isinstance(value, str):
            base = _NOT_NAME.sub("-", value).strip("-._@")[:80]
            if base:
                break
    base = base or "user"
    suffix = hashlib.sha256(str(claims["sub"]).encode()).hexdigest()[:6]
    for name in (base, f"{base}-{suffix}", f"{base}-{uuid.uuid4().hex[:8]}"):
        services.check_user_name(name)
        if session.scalar(select(UserRow.id).where(UserRow.name == name)) is None:
            break
    now = now_ms()
    user = UserRow(id=uuid.uuid4().hex, name=name, is_service=False, created_at=now,
                   created_by=AUDIT_ACTOR)  # fmt: skip
    session.add(user)
    session.flush()
    session.add(UserRoleRow(user_id=user.id, workspace=DEFAULT_WORKSPACE, role=role,
                            granted_at=now, granted_by=AUDIT_ACTOR))  # fmt: skip
    session.flush()
    return user


def _set_role(session: Session, user: UserRow, role: str, now: int) -> str | None:
    """Give ``user`` the role ``role``; the role it had when that changed it, else None."""
    grant = session.get(UserRoleRow, (user.id, DEFAULT_WORKSPACE))
    if grant is None:
        session.add(UserRoleRow(user_id=user.id, workspace=DEFAULT_WORKSPACE, role=role,
                                granted_at=now, granted_by=AUDIT_ACTOR))  # fmt: skip
        _audit(session, f"oidc set-role (none) -> {role}", user.name)
        return None
    if grant.role == role:
        return None
    previous = grant.role
    grant.role, grant.granted_at, grant.granted_by = role, now, AUDIT_ACTOR
    _audit(session, f"oidc set-role {previous} -> {role}", user.name)
    return previous


def _audit(session: Session, action: str, user: str) -> None:
    session.flush()
    audit.append(session, actor=AUDIT_ACTOR, action=action, resource=f"users/{user}", outcome=200)
