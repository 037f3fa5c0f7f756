"""``client.governance``: users, roles, API keys, ``whoami`` and the audit log, over one backend.

Example:
    >>> client.governance.create_user("ci-bot", role="editor", service=True)
    >>> new = client.governance.create_key("github", user="ci-bot", expires_in_s=30 * 86400)
    >>> new.secret   # shown once: store it as OPSLOOP_TOKEN in the CI's secrets
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from opsloop.config import DEFAULT_WORKSPACE
from opsloop.governance.backend import GovernanceBackend
from opsloop.governance.entities import ApiKey
from opsloop.governance.entities import AuditEvent
from opsloop.governance.entities import AuditFilter
from opsloop.governance.entities import AuditPage
from opsloop.governance.entities import AuditVerdict
from opsloop.governance.entities import KeyCreate
from opsloop.governance.entities import NewApiKey
from opsloop.governance.entities import User
from opsloop.governance.entities import UserCreate
from opsloop.governance.entities import Whoami
from opsloop.governance.entities import Workspace
from opsloop.governance.key_limits import KeyLimitsChange
from opsloop.governance.key_limits import LimitedApiKey
from opsloop.governance.masking import MaskingPolicy
from opsloop.governance.masking import MaskingSet
from opsloop.kernel.validation import validated

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

    def set_role(self, name: str, role: str, *, workspace: str = DEFAULT_WORKSPACE) -> User:
        """Give ``name`` the role ``role`` in ``workspace`` (each workspace has its own)."""
        return self._backend.set_role(name, role, workspace)

    def list_workspaces(self) -> list[Workspace]:
        """``default``, then every workspace made, by name."""
        return self._backend.list_workspaces()

    def create_workspace(self, name: str) -> Workspace:
        """Make a workspace (admins): its objects get a store of their own; give people a
        role there with :meth:`set_role`."""
        return self._backend.create_workspace(name)

    def disable_user(self, name: str) -> User:
        """Refuse every key and web session of ``name`` (admins); nothing is deleted, and
        :meth:`enable_user` gives it all back."""
        return self._backend.set_disabled(name, True)

    def enable_user(self, name: str) -> User:
        return self._backend.set_disabled(name, False)

    def create_key(
        self,
        name: str,
        *,
        user: str | None = None,
        expires_in_s: int | None = None,
        role: str | None = None,
    ) -> NewApiKey:
        """A new API key for ``user`` (default: yourself); ``.secret`` is shown this once."""
        body = validated(KeyCreate, user=user, name=name, expires_in_s=expires_in_s, role=role)
        return self._backend.create_key(body)

    def list_keys(self, user: str | None = None) -> list[LimitedApiKey]:
        """Your keys, or ``user``'s (``"*"``: everyone's); prefixes only, never secrets."""
        return self._backend.list_keys(user)

    def set_key_limits(
        self,
        key_id: str,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: float | None = None,
        budget_period: Literal["day", "month"] | None = None,
        clear: bool = False,
    ) -> LimitedApiKey:
        """Limit what a key may use through the LLM gateway (admins): requests and tokens per
        minute, and a spend budget per UTC ``day`` or ``month``. None leaves a limit as it is;
        ``clear=True`` removes them all first (``clear=True, rpm=60``: a request limit only)."""
        change = validated(KeyLimitsChange, rpm=rpm, tpm=tpm, budget_usd=budget_usd,
                           budget_period=budget_period, clear=clear)  # fmt: skip
        return self._backend.set_key_limits(key_id, change)

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
        flt = AuditFilter(actor=actor, resource=resource, since=since)
        return self._backend.list_audit(flt, max_results, page_token)

    def iter_audit(
        self, *, actor: str | None = None, resource: str | None = None, since: int | None = None
    ) -> Iterator[AuditEvent]:
        """Every matching event, newest first, a page at a time."""
        flt = AuditFilter(actor=actor, resource=resource, since=since)
        token: str | None = None
        while True:
            page = self._backend.list_audit(flt, 1000, token)
            yield from page.items
            token = page.next_page_token
            if token is None:
                return

    def verify_audit(self) -> AuditVerdict:
        """Walk the audit chain (see ``opsloop audit verify``)."""
        return self._backend.verify_audit()

    def masking(self) -> MaskingPolicy:
        """The PII entities masked at ingest, per stream (``None``: off)."""
        return self._backend.get_masking()

    def set_masking(
        self,
        streams: list[str] | str,
        entities: list[str] | str | None,
        *,
        mode: Literal["placeholder", "hash"] = "placeholder",
    ) -> MaskingPolicy:
        """Mask ``entities`` (``["EMAIL", "PHONE"]``; None: off) in ``streams`` (``traces``,
        ``predictions``) from the next span or prediction on, as ``<EMAIL_ADDRESS>`` or, with
        ``mode="hash"``, a keyed hash that still joins. Admins, on a server."""
        if isinstance(streams, str):
            streams = streams.split(",")
        if isinstance(entities, str):
            entities = entities.split(",")
        body = validated(MaskingSet, streams=streams, entities=entities, mode=mode)
        return self._backend.set_masking(body)
