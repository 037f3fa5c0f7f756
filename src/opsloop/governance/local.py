"""The local governance backend: the services in-process, one transaction per call, acting as
the OS user with the ``admin`` role (the database's owner; see :mod:`.backend`)."""

from __future__ import annotations

from opsloop.governance import audit
from opsloop.governance import masking
from opsloop.governance import routes
from opsloop.governance import services
from opsloop.governance import user_status
from opsloop.governance import workspaces
from opsloop.governance.backend import GovernanceBackend
from opsloop.governance.entities import ApiKey
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
from opsloop.governance.roles import ADMIN
from opsloop.kernel.identity import Principal
from opsloop.kernel.identity import current_user
from opsloop.store.database import Store

__all__ = ["LocalGovernanceBackend"]


class LocalGovernanceBackend(GovernanceBackend):
    """Governance on the stores directly, as the store's owner (admin).

    Args:
        store: The root store: users, keys, roles and the list of workspaces.
        workspace: The workspace worked in (its audit log, masking and retention are in its
            own store: ``workspace_store``, the root store for ``default``).
    """

    def __init__(
        self, store: Store, workspace_store: Store | None = None, workspace: str = "default"
    ) -> None:
        self.store = store
        self.workspace_store = workspace_store or store
        self.workspace = workspace

    @property
    def actor(self) -> Principal:
        return Principal(name=current_user(), role=ADMIN, auth="embedded", workspace=self.workspace)

    def create_user(self, body: UserCreate) -> User:
        with self.store.write() as s:
            return services.create_user(s, body, self.actor)

    def list_users(self) -> list[User]:
        with self.store.read() as s:
            return services.list_users(s)

    def set_role(self, name: str, role: str, workspace: str) -> User:
        with self.store.write() as s:
            return services.set_role(s, name, role, self.actor, workspace)

    def list_workspaces(self) -> list[Workspace]:
        with self.store.read() as s:
            return workspaces.list_workspaces(s)

    def create_workspace(self, name: str) -> Workspace:
        with self.store.write() as s:
            return workspaces.create_workspace(s, name, self.actor)

    def set_disabled(self, name: str, disabled: bool) -> User:
        """As the REST route does, with its audit event (no server middleware writes one)."""
        route = routes.USER_DISABLE if disabled else routes.USER_ENABLE
        with self.store.write() as s:
            user = user_status.set_disabled(s, name, disabled, self.actor)
            audit.append(s, actor=self.actor.name, action=f"POST {route.mount}{route.template}",
                         resource=route.url(name=user.name).removeprefix(f"{route.mount}/"),
                         outcome=200)  # fmt: skip
        return user

    def create_key(self, body: KeyCreate) -> NewApiKey:
        with self.store.write() as s:
            return services.create_key(s, body, self.actor)

    def list_keys(self, user: str | None = None) -> list[LimitedApiKey]:
        with self.store.read() as s:
            return services.list_keys(s, self.actor, user or "*")

    def revoke_key(self, key_id: str) -> ApiKey:
        with self.store.write() as s:
            return services.revoke_key(s, key_id, self.actor)

    def set_key_limits(self, key_id: str, change: KeyLimitsChange) -> LimitedApiKey:
        with self.store.write() as s:
            return services.set_key_limits(s, key_id, change, self.actor)

    def whoami(self) -> Whoami:
        actor = self.actor
        return Whoami(name=actor.name, role=actor.role, auth=actor.auth, workspace=actor.workspace)

    def list_audit(self, flt: AuditFilter, max_results: int, page_token: str | None) -> AuditPage:
        with self.workspace_store.read() as s:
            return audit.list_page(s, flt, max_results, page_token)

    def verify_audit(self) -> AuditVerdict:
        with self.workspace_store.read() as s:
            return audit.verify(s)

    def get_masking(self) -> masking.MaskingPolicy:
        with self.workspace_store.read() as s:
            return masking.get_masking(s)

    def set_masking(self, body: masking.MaskingSet) -> masking.MaskingPolicy:
        with self.workspace_store.write() as s:
            return masking.set_masking(s, body, self.actor.name)
