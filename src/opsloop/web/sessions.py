"""Web UI sessions: what the login cookie holds instead of the server token.

Signing in with the server token creates a session: a random id (256 bits) that goes in the
cookie, and a row in the metadata store, so a session outlives a server restart and is seen by
every worker and every server process over the same store. The row holds no usable secret: its
key is ``HMAC-SHA256(server token, session id)``, so neither a copy of the table nor the cookie
alone is the token, and changing the server token ends every session at once (their keys no
longer match). Sessions end after :data:`SESSION_TTL_S`; signing out deletes the row, so an old
cookie is refused everywhere from then on. Expired rows are swept at each sign-in.

The CSRF token of a session is derived from its id (``HMAC-SHA256(session id, "csrf")``): it
is bound to the session, needs no column, and does not reveal the id.

``subject`` says who the session acts for; today only the server token signs in
(:data:`TOKEN_SUBJECT`), later a user id.

The table lives here, with the web layer (the only code that reads it), above the store;
``opsloop.schema`` gathers it with every domain's tables.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import BigInteger
from sqlalchemy import String
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from opsloop.kernel.timeutil import now_ms
from opsloop.store.base import Base
from opsloop.store.database import Store

__all__ = [
    "SESSION_TTL_S",
    "TOKEN_SUBJECT",
    "SessionRow",
    "WebSession",
    "csrf_token_for",
    "end_session",
    "find_session",
    "start_session",
]

SESSION_TTL_S = 12 * 3600  # a working day; then the browser signs in again
TOKEN_SUBJECT = "token"  # the session was opened with the server token
_MAX_ID = 128  # a cookie longer than any id we issue is not looked up


class SessionRow(Base):
    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # HMAC of the id, hex
    subject: Mapped[str] = mapped_column(String(250))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


@dataclass(frozen=True)
class WebSession:
    """A live session, as the auth check sees it."""

    subject: str
    expires_at: int  # epoch ms
    csrf_token: str


def _key(secret: str, session_id: str) -> str:
    return hmac.new(secret.encode(), session_id.encode(), hashlib.sha256).hexdigest()


def csrf_token_for(session_id: str) -> str:
    """The CSRF token of the session ``session_id`` (what its forms carry)."""
    return hmac.new(session_id.encode(), b"csrf", hashlib.sha256).hexdigest()


def start_session(
    store: Store, secret: str, subject: str = TOKEN_SUBJECT, ttl_s: int = SESSION_TTL_S
) -> str:
    """A new session for ``subject``, keyed with ``secret`` (the server token); returns the id
    for the cookie. Sweeps the sessions that have expired."""
    session_id = secrets.token_urlsafe(32)
    now = now_ms()
    with store.write() as session:
        session.execute(delete(SessionRow).where(SessionRow.expires_at <= now))
        session.add(
            SessionRow(
                id=_key(secret, session_id),
                subject=subject,
                created_at=now,
                expires_at=now + ttl_s * 1000,
            )
        )
    return session_id


def find_session(store: Store, secret: str, session_id: str) -> WebSession | None:
    """The live session ``session_id`` stands for, or None (unknown, expired, ended, or opened
    under another server token)."""
    if not session_id or len(session_id) > _MAX_ID:
        return None
    with store.read() as session:
        row = session.execute(
            select(SessionRow.subject, SessionRow.expires_at).where(
                SessionRow.id == _key(secret, session_id), SessionRow.expires_at > now_ms()
            )
        ).first()
    if row is None:
        return None
    return WebSession(row.subject, row.expires_at, csrf_token_for(session_id))


def end_session(store: Store, secret: str, session_id: str) -> None:
    """Delete the session (signing out); an unknown id is no error."""
    if not session_id or len(session_id) > _MAX_ID:
        return
    with store.write() as session:
        session.execute(delete(SessionRow).where(SessionRow.id == _key(secret, session_id)))
