"""Governance's REST routes under ``/api``: users, roles, API keys, ``whoami`` and the audit log.

Who may call which route is decided before the route runs, in the server's one auth check (the
roles are in :mod:`opsloop.governance.policy`); the services then check what depends on the
data: a role or a key above the caller's own, another user's key. The routes that change users,
roles or keys open their own transaction and, once it is committed, empty the authorizer's
cache, so a revoked key or a lowered role holds from the next request on.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi import Query
from fastapi import status

from opsloop.governance import audit
from opsloop.governance import masking
from opsloop.governance import routes
from opsloop.governance import services
from opsloop.governance import user_status
from opsloop.governance import workspaces
from opsloop.governance.entities import ApiKey
from opsloop.governance.entities import AuditFilter
from opsloop.governance.entities import AuditPage
from opsloop.governance.entities import AuditVerdict
from opsloop.governance.entities import KeyCreate
from opsloop.governance.entities import NewApiKey
from opsloop.governance.entities import RoleSet
from opsloop.governance.entities import User
from opsloop.governance.entities import UserCreate
from opsloop.governance.entities import Whoami
from opsloop.governance.entities import Workspace
from opsloop.governance.entities import WorkspaceCreate
from opsloop.governance.key_limits import KeyLimitsChange
from opsloop.governance.key_limits import LimitedApiKey
from opsloop.governance.roles import ADMIN
from opsloop.kernel.identity import Principal
from opsloop.kernel.identity import current_principal
from opsloop.kernel.identity import current_user
from opsloop.web.deps import AppState
from opsloop.web.deps import MaxResults
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State

__all__ = ["router"]

router = APIRouter(tags=["governance"])


def _actor(state: AppState) -> Principal:
    """The caller: the principal the auth check resolved (users mode), else the server's own
    user acting as admin (a token or an open server gives its holder everything)."""
    principal = current_principal()
    if principal is not None:
        return principal
    return Principal(name=current_user(), role=ADMIN, auth=state.settings.auth_mode)


def _changed(state: AppState) -> None:
    if state.authorizer is not None:
        state.authorizer.forget()


@router.get(routes.WHOAMI.template)
def whoami(state: State) -> Whoami:
    """The caller's name, role and the server's auth mode."""
    actor = _actor(state)
    return Whoami(name=actor.name, role=actor.role, auth=actor.auth, workspace=actor.workspace,
                  is_service=actor.is_service)  # fmt: skip


@router.get(routes.USERS.template)
def list_users(session: ReadSession) -> list[User]:
    return services.list_users(session)


@router.post(routes.USERS.template, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, state: State) -> User:
    with state.store.write() as session:
        return services.create_user(session, body, _actor(state))


@router.get(routes.USER.template)
def get_user(name: str, session: ReadSession) -> User:
    return services.get_user(session, name)


@router.put(routes.USER_ROLE.template)
def set_role(name: str, body: RoleSet, state: State) -> User:
    with state.store.write() as session:
        user = services.set_role(session, name, body.role, _actor(state), body.workspace)
    _changed(state)
    return user


@router.get(routes.WORKSPACES.template)
def list_workspaces(session: ReadSession) -> list[Workspace]:
    """Every workspace: ``default``, then the ones made, by name. Send a workspace's name as
    the ``X-Opsloop-Workspace`` header to work in it."""
    return workspaces.list_workspaces(session)


@router.post(routes.WORKSPACES.template, status_code=status.HTTP_201_CREATED)
def create_workspace(body: WorkspaceCreate, state: State) -> Workspace:
    """Make a workspace (admins); its objects get a store of their own."""
    with state.store.write() as session:
        made = workspaces.create_workspace(session, body.name, _actor(state))
    if state.workspaces is not None:  # its scheduler and controllers start now
        state.workspaces.state(made.name)
    return made


@router.post(routes.USER_DISABLE.template)
def disable_user(name: str, state: State) -> User:
    """Refuse every key and session of ``name`` from the next request on (admins; the last
    enabled admin cannot be disabled: 409). Nothing of theirs is deleted."""
    with state.store.write() as session:
        user = user_status.set_disabled(session, name, True, _actor(state))
    _changed(state)
    return user


@router.post(routes.USER_ENABLE.template)
def enable_user(name: str, state: State) -> User:
    """Let ``name``'s keys and sessions in again (admins)."""
    with state.store.write() as session:
        user = user_status.set_disabled(session, name, False, _actor(state))
    _changed(state)
    return user


@router.post(routes.KEYS.template, status_code=status.HTTP_201_CREATED)
def create_key(body: KeyCreate, state: State) -> NewApiKey:
    """The new key's secret is in this answer only; it is stored as a hash."""
    with state.store.write() as session:
        return services.create_key(session, body, _actor(state))


@router.get(routes.KEYS.template)
def list_keys(session: ReadSession, state: State, user: str | None = None) -> list[LimitedApiKey]:
    """The caller's keys, or ``user``'s (``*``: everyone's; admins only). No secrets."""
    return services.list_keys(session, _actor(state), user)


@router.delete(routes.KEY.template)
def revoke_key(key_id: str, state: State) -> ApiKey:
    with state.store.write() as session:
        key = services.revoke_key(session, key_id, _actor(state))
    _changed(state)
    return key


@router.patch(routes.KEY_LIMITS.template)
def set_key_limits(key_id: str, body: KeyLimitsChange, state: State) -> LimitedApiKey:
    """Change what a key may use through the LLM gateway (admins); omitted limits stay."""
    with state.store.write() as session:
        return services.set_key_limits(session, key_id, body, _actor(state))


@router.get(routes.AUDIT.template)
def list_audit(
    session: ReadSession,
    actor: str | None = None,
    resource: str | None = Query(None, description="a prefix: 'models/churn' and below"),
    since: int | None = Query(None, ge=0, description="epoch ms"),
    page_token: str | None = None,
    max_results: MaxResults = 100,
) -> AuditPage:
    """Audit events, newest first (admins, in ``users`` mode)."""
    flt = AuditFilter(actor=actor, resource=resource, since=since)
    return audit.list_page(session, flt, max_results, page_token)


@router.get(routes.AUDIT_VERIFY.template)
def verify_audit(session: ReadSession) -> AuditVerdict:
    """Walk the whole chain: ``ok``, or the first bad event's ``seq`` and what is wrong."""
    return audit.verify(session)


@router.get(masking.MASKING.template)
def get_masking(session: ReadSession) -> masking.MaskingPolicy:
    """The PII entities masked at ingest per stream (``traces``, ``predictions``; ``null``:
    off), and how (admins, in ``users`` mode)."""
    return masking.get_masking(session)


@router.put(masking.MASKING.template)
def set_masking(body: masking.MaskingSet, state: State) -> masking.MaskingPolicy:
    """Mask ``entities`` in the ``streams`` named from the next span or prediction on, before
    anything is written; ``entities: null`` turns it off. An unknown stream or entity: 400."""
    with state.store.write() as session:
        return masking.set_masking(session, body, _actor(state).name)
