"""The local governance backend: the services in-process, one transaction per call, acting as
the OS user with the ``admin`` role (the database's owner; see :mod:`.backend`)."""

from __future__ import annotations

from opsloop.governance import audit, services
from opsloop.governance.backend import GovernanceBackend
from opsloop.governance.entities import (
    ApiKey,
    AuditPage,
    AuditVerdict,
    KeyCreate,
    NewApiKey,
    User,
    UserCreate,
    Whoami,
)
from opsloop.governance.roles import ADMIN
from opsloop.kernel.identity import Principal, current_user
from opsloop.kernel.paging import decode_page_token, encode_page_token
from opsloop.store.database import Store

__all__ = ["LocalGovernanceBackend"]


class LocalGovernanceBackend(GovernanceBackend):
    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def actor(self) -> Principal:
        return Principal(name=current_user(), role=ADMIN, auth="embedded")

    def create_user(self, body: UserCreate) -> User:
        with self.store.write() as s:
            return services.create_user(s, body, self.actor)

    def list_users(self) -> list[User]:
        with self.store.read() as s:
            return services.list_users(s)

    def set_role(self, name: str, role: str) -> User:
        with self.store.write() as s:
            return services.set_role(s, name, role, self.actor)

    def create_key(self, body: KeyCreate) -> NewApiKey:
        with self.store.write() as s:
            return services.create_key(s, body, self.actor)

    def list_keys(self, user: str | None = None) -> list[ApiKey]:
        with self.store.read() as s:
            return services.list_keys(s, self.actor, user or "*")

    def revoke_key(self, key_id: str) -> ApiKey:
        with self.store.write() as s:
            return services.revoke_key(s, key_id, self.actor)

    def whoami(self) -> Whoami:
        actor = self.actor
        return Whoami(name=actor.name, role=actor.role, auth=actor.auth, workspace=actor.workspace)

    def list_audit(
        self,
        *,
        actor: str | None = None,
        resource: str | None = None,
        since: int | None = None,
        page_token: str | None = None,
        max_results: int = 100,
    ) -> AuditPage:
        before = decode_page_token(page_token) or None
        with self.store.read() as s:
            events = audit.list_events(s, actor=actor, resource=resource, since=since,
                                       before_seq=before, limit=max_results + 1)  # fmt: skip
        more = len(events) > max_results
        events = events[:max_results]
        token = encode_page_token(events[-1].seq) if more and events else None
        return AuditPage(items=events, next_page_token=token)

    def verify_audit(self) -> AuditVerdict:
        with self.store.read() as s:
            return audit.verify(s)
