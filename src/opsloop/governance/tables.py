"""Governance's tables: users, their role per workspace, API keys (stored hashed), and the
audit log (a hash chain of events and its head).

``user_roles`` is keyed by ``(user_id, workspace)``: one workspace today, more later without
changing the grants. ``api_keys.key_hash`` is the SHA-256 of the key (see
:mod:`opsloop.governance.keys` for why not bcrypt); ``prefix`` is what listings show.
"""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy import Boolean
from sqlalchemy import Float
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from opsloop.store import columns as col
from opsloop.store.base import Base


class UserRow(col.Named, col.CreatedAt, col.CreatedBy, Base):
    __tablename__ = "users"

    is_service: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_at: Mapped[int | None] = mapped_column(BigInteger)  # set: every sign-in refused


class UserIdentityRow(Base):
    """An external identity (an OpenID provider's ``issuer`` and ``sub``) that signs in as a
    user: the subject, not the e-mail or name the provider sends, is what identifies a person
    (:mod:`opsloop.governance.oidc_users`)."""

    __tablename__ = "user_identities"

    issuer: Mapped[str] = mapped_column(String(500), primary_key=True)
    subject: Mapped[str] = mapped_column(String(250), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        col.ID, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_login_at: Mapped[int] = mapped_column(BigInteger)


class UserRoleRow(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[str] = col.owner_key("users")
    workspace: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    granted_at: Mapped[int] = mapped_column(BigInteger)
    granted_by: Mapped[str] = mapped_column(String(250))


class ApiKeyRow(col.IdKey, col.CreatedAt, col.CreatedBy, Base):
    __tablename__ = "api_keys"

    user_id: Mapped[str] = mapped_column(
        col.ID, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(250))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str | None] = mapped_column(String(16))
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    # what the LLM gateway lets the key use (None: unlimited); see governance.key_limits
    rpm: Mapped[int | None] = mapped_column(Integer)
    tpm: Mapped[int | None] = mapped_column(BigInteger)
    budget_usd: Mapped[float | None] = mapped_column(Float)
    budget_period: Mapped[str | None] = mapped_column(String(8))


class AuditEventRow(Base):
    """One audit event, chained to the one before: ``hash = sha256(prev_hash + canonical JSON
    of the event)`` (:mod:`opsloop.governance.audit`). ``seq`` is dense (1, 2, 3 ...: each
    append takes the head's ``seq + 1``), so a deleted row is a gap that names itself."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    actor: Mapped[str] = mapped_column(String(250), index=True)
    workspace: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(500))
    resource: Mapped[str] = mapped_column(String(1000))
    request_id: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The chain's last ``seq`` and ``hash``, one row (``id`` 1): appends lock it (``SELECT ...
    FOR UPDATE`` on PostgreSQL; SQLite's write lock already serialises them), and ``audit
    verify`` compares it with the last row, so deleting the newest rows is detected too."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class RetentionRow(Base):
    """How many days one kind of data (``traces``, ``scores``, ``predictions``) is kept in a
    workspace, and when it was last swept: the scheduler claims a sweep by moving
    ``swept_at`` with a compare-and-set, so several schedulers sweep each kind once an hour.

    The ``mask_*`` columns are the same workspace's masking at ingest for that kind (a stream:
    ``traces`` or ``predictions``, see :mod:`opsloop.governance.masking`): the entities masked
    (comma-separated; ``None``: off), ``placeholder`` or ``hash``, and the hash key."""

    __tablename__ = "retention_policies"

    workspace: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    days: Mapped[int | None] = mapped_column(Integer)
    swept_at: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(250))
    mask_entities: Mapped[str | None] = mapped_column(String(500))
    mask_mode: Mapped[str | None] = mapped_column(String(16))
    mask_key: Mapped[str | None] = mapped_column(String(64))


class WorkspaceRow(col.CreatedAt, col.CreatedBy, Base):
    """A workspace made besides ``default`` (which always exists and is the root store
    itself); kept in the root store, its objects in a store of their own
    (:mod:`opsloop.store.workspaces`)."""

    __tablename__ = "workspaces"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
