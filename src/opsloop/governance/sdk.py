"""``client.governance``: users, roles, API keys, ``whoami`` and the audit log, over one backend.

Example:
    >>> client.governance.create_user("ci-bot", role="editor", service=True)
    >>> new = client.governance.create_key("github", user="ci-bot", expires_in_s=30 * 86400)
    >>> new.secret   # shown once: store it as OPSLOOP_TOKEN in the CI's secrets
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import ValidationError

from opsloop.errors import InvalidInput, validation_problems
from opsloop.governance.backend import GovernanceBackend
from opsloop.governance.entities import (
    ApiKey,
    AuditEvent,
    AuditPage,
    AuditVerdict,
    KeyCreate,
    NewApiKey,
    User,
    UserCreate,
    Whoami,
)

__all__ = ["GovernanceClient"]


class GovernanceClient:
    """Users, roles and API keys; on a server, what the caller's role allows."""

    def __init__(self, backend: GovernanceBackend) -> None:
        self._backend = backend

    def create_user(self, name: str, *, role: str = "viewer", service: bool = False) -> User:
        """Create a user (``service=True``: a service account) with ``role``."""
        return self._backend.create_user(UserCreate(name=name, role=role, service=service))

    def list_users(self) -> list[User]:
        return self._backend.list_users()

    def set_role(self, name: str, role: str) -> User:
        return self._backend.set_role(name, role)

    def create_key(
        self,
        name: str,
        *,
        user: str | None = None,
        expires_in_s: int | None = None,
        role: str | None = None,
    ) -> NewApiKey:
        """A new API key for ``user`` (default: yourself); ``.secret`` is shown this once."""
        try:
            body = KeyCreate(user=user, name=name, expires_in_s=expires_in_s, role=role)
        except ValidationError as exc:
            raise InvalidInput("; ".join(validation_problems(exc))) from None
        return self._backend.create_key(body)

    def list_keys(self, user: str | None = None) -> list[ApiKey]:
        """Your keys, or ``user``'s (``"*"``: everyone's); prefixes only, never secrets."""
        return self._backend.list_keys(user)

    def revoke_key(self, key_id: str) -> ApiKey:
        """Revoke a key by id or by the prefix ``keys list`` shows."""
        return self._backend.revoke_key(key_id)

    def whoami(self) -> Whoami:
        return self._backend.whoami()

    def list_audit(
        self,
        *,
        actor: str | None = None,
        resource: str | None = None,
        since: int | None = None,
        page_token: str | None = None,
        max_results: int = 100,
    ) -> AuditPage:
        """Audit events newest first; ``resource`` is a prefix, ``since`` epoch ms."""
        return self._backend.list_audit(actor=actor, resource=resource, since=since,
                                        page_token=page_token, max_results=max_results)  # fmt: skip

    def iter_audit(
        self, *, actor: str | None = None, resource: str | None = None, since: int | None = None
    ) -> Iterator[AuditEvent]:
        """Every matching event, newest first, a page at a time."""
        token: str | None = None
        while True:
            page = self.list_audit(actor=actor, resource=resource, since=since,
                                   page_token=token, max_results=1000)  # fmt: skip
            yield from page.items
            token = page.next_page_token
            if token is None:
                return

    def verify_audit(self) -> AuditVerdict:
        """Walk the audit chain (see ``opsloop audit verify``)."""
        return self._backend.verify_audit()
