"""The remote governance backend: the server's ``/api/users``, ``/api/keys``, ``/api/audit``
and ``/api/whoami``; the server acts for the principal the client's key authenticates."""

from __future__ import annotations

from opsloop.governance import masking
from opsloop.governance import routes
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
from opsloop.kernel.paging import page_query
from opsloop.kernel.transport import HttpTransport

__all__ = ["RemoteGovernanceBackend"]

_JSON = {"Content-Type": "application/json"}


class RemoteGovernanceBackend(GovernanceBackend):
    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport

    def create_user(self, body: UserCreate) -> User:
        raw = self.http.request(
            "POST", routes.USERS.url(), content=body.model_dump_json(), headers=_JSON,
            idempotent=False,
        ).content  # fmt: skip
        return User.model_validate_json(raw)

    def list_users(self) -> list[User]:
        return self.http.fetch(list[User], "GET", routes.USERS.url())

    def set_role(self, name: str, role: str, workspace: str) -> User:
        body = {"role": role, "workspace": workspace}
        raw = self.http.request("PUT", routes.USER_ROLE.url(name=name), json=body)
        return User.model_validate_json(raw.content)

    def list_workspaces(self) -> list[Workspace]:
        return self.http.fetch(list[Workspace], "GET", routes.WORKSPACES.url())

    def create_workspace(self, name: str) -> Workspace:
        raw = self.http.request("POST", routes.WORKSPACES.url(), json={"name": name}).content
        return Workspace.model_validate_json(raw)

    def set_disabled(self, name: str, disabled: bool) -> User:
        route = routes.USER_DISABLE if disabled else routes.USER_ENABLE
        raw = self.http.request("POST", route.url(name=name)).content
        return User.model_validate_json(raw)

    def create_key(self, body: KeyCreate) -> NewApiKey:
        raw = self.http.request(
            "POST", routes.KEYS.url(), content=body.model_dump_json(exclude_none=True),
            headers=_JSON, idempotent=False,
        ).content  # fmt: skip
        return NewApiKey.model_validate_json(raw)

    def list_keys(self, user: str | None = None) -> list[LimitedApiKey]:
        params = {"user": user} if user else {}
        return self.http.fetch(list[LimitedApiKey], "GET", routes.KEYS.url(), params=params)

    def revoke_key(self, key_id: str) -> ApiKey:
        raw = self.http.request("DELETE", routes.KEY.url(key_id=key_id)).content
        return ApiKey.model_validate_json(raw)

    def set_key_limits(self, key_id: str, change: KeyLimitsChange) -> LimitedApiKey:
        raw = self.http.request(
            "PATCH", routes.KEY_LIMITS.url(key_id=key_id), content=change.model_dump_json(),
            headers=_JSON,
        ).content  # fmt: skip
        return LimitedApiKey.model_validate_json(raw)

    def whoami(self) -> Whoami:
        found = Whoami.model_validate_json(self.http.request("GET", routes.WHOAMI.url()).content)
        return found.model_copy(update={"server": self.http.base_url})

    def list_audit(self, flt: AuditFilter, max_results: int, page_token: str | None) -> AuditPage:
        params = {**flt.query_params(), **page_query(max_results, page_token)}
        raw = self.http.request("GET", routes.AUDIT.url(), params=params).content
        return AuditPage.model_validate_json(raw)

    def verify_audit(self) -> AuditVerdict:
        raw = self.http.request("GET", routes.AUDIT_VERIFY.url()).content
        return AuditVerdict.model_validate_json(raw)

    def get_masking(self) -> masking.MaskingPolicy:
        raw = self.http.request("GET", masking.MASKING.url()).content
        return masking.MaskingPolicy.model_validate_json(raw)

    def set_masking(self, body: masking.MaskingSet) -> masking.MaskingPolicy:
        raw = self.http.request(
            "PUT", masking.MASKING.url(), content=body.model_dump_json(), headers=_JSON
        ).content
        return masking.MaskingPolicy.model_validate_json(raw)
