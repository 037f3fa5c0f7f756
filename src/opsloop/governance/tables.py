"""Governance's tables: users, their role per workspace, and API keys (stored hashed).

``user_roles`` is keyed by ``(user_id, workspace)``: one workspace today, more later without
changing the grants. ``api_keys.key_hash`` is the SHA-256 of the key (see
:mod:`opsloop.governance.keys` for why not bcrypt); ``prefix`` is what listings show.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from opsloop.store import columns as col
from opsloop.store.base import Base


class UserRow(col.Named, col.CreatedAt, col.CreatedBy, Base):
    __tablename__ = "users"

    is_service: Mapped[bool] = mapped_column(Boolean, default=False)


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
